//! Bind-mount sources taken while the runtime is still the host's root.
//!
//! In a new user namespace the container's root is some other host uid:
//! a source under a directory only host root may enter (0700) cannot be
//! reached by path any more. So, before that namespace is entered, each
//! bind source is cloned into a detached mount tree (open_tree), which
//! the container's init attaches at its destination (move_mount), as
//! runc passes it descriptors of the sources it opened.

use super::{bind_source, idmap, mount_err, mountapi, options, RootfsError};
use oci_spec::runtime::Spec;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// A bind source, as a tree attached nowhere yet.
pub struct Source {
    pub tree: OwnedFd,
    /// Whether it is a directory (else a file), which the source's path
    /// can no longer tell once in the user namespace.
    pub dir: bool,
}

/// The cloned source of each spec mount, by its index in `mounts`; `None`
/// for a mount that is no bind.
#[derive(Default)]
pub struct Sources(Vec<Option<Source>>);

impl Sources {
    /// Clones the source of every bind mount of `spec` (with `every`: for a
    /// new user namespace), or of the idmapped ones alone, and idmaps
    /// those. A kernel without open_tree (before 5.2) gets no clones: the
    /// sources are then mounted by path, as before (an idmapped one fails).
    /// A source below the rootfs is left to be found in the container's
    /// own tree when its turn comes, so that it shows the mounts listed
    /// before it (the container's root reaches it); an idmapped one is
    /// cloned, since the clone is what gets idmapped.
    pub fn clone_all(
        spec: &Spec,
        bundle: &Path,
        rootfs: &Path,
        every: bool,
    ) -> Result<Sources, RootfsError> {
        let propagation = super::root_propagation(spec) - nix::mount::MsFlags::MS_REC;
        let mut all = Vec::new();
        for m in spec.mounts().iter().flatten() {
            let dest = m.destination();
            let idmap = idmap::of(m, spec.linux().as_ref()).map_err(|why| RootfsError::Idmap {
                src: m
                    .source()
                    .as_ref()
                    .map(|s| s.display().to_string())
                    .unwrap_or_default(),
                dest: dest.clone(),
                why,
            })?;
            let wanted = |s: &PathBuf| idmap.is_some() || (every && !s.starts_with(rootfs));
            let Some(src) = bind_source(m, bundle).filter(wanted) else {
                all.push(None);
                continue;
            };
            let opts = options::parse_all(m.options().iter().flatten());
            let recursive = opts.flags.contains(nix::mount::MsFlags::MS_REC);
            let tree = match mountapi::clone_tree(&src, recursive, propagation) {
                Err(nix::errno::Errno::ENOSYS) if idmap.is_none() => return Ok(Sources::default()),
                r => r.map_err(mount_err(&src, dest, "bind"))?,
            };
            if let Some(idmap) = &idmap {
                idmap::apply(&tree, idmap, &src.display().to_string(), dest)?;
            }
            let dir = nix::sys::stat::fstat(&tree)
                .map_err(mount_err(&src, dest, "bind"))?
                .st_mode
                & libc::S_IFMT
                == libc::S_IFDIR;
            all.push(Some(Source { tree, dir }));
        }
        Ok(Sources(all))
    }

    /// The cloned source of spec mount number `i`, if any.
    pub fn get(&self, i: usize) -> Option<&Source> {
        self.0.get(i).and_then(Option::as_ref)
    }
}

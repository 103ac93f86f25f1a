//! Idmapped bind mounts (runtime-spec 1.2: the `idmap` and `ridmap`
//! options, and a mount's own `uidMappings`/`gidMappings`): files on the
//! mount show their owners shifted by the mappings, which the kernel takes
//! from a user namespace made for the purpose.

use super::{mountapi, options, RootfsError};
use oci_spec::runtime::{Linux, LinuxIdMapping, Mount};
use std::os::fd::OwnedFd;

/// What an idmapped mount needs: its mappings, and whether every mount of
/// its tree gets them (`ridmap`) or the top one only.
pub struct Idmap {
    pub uids: Vec<LinuxIdMapping>,
    pub gids: Vec<LinuxIdMapping>,
    pub recursive: bool,
}

/// The idmapping mount `m` asks for, if any. A mount's own mappings imply
/// `idmap`; without them the container's user namespace's are taken, as
/// the spec says. Errors say why the request cannot be met.
pub fn of(m: &Mount, linux: Option<&Linux>) -> Result<Option<Idmap>, String> {
    let option = options::parse_all(m.options().iter().flatten()).idmap;
    let own = (m.uid_mappings().as_ref(), m.gid_mappings().as_ref());
    if option.is_none() && own == (None, None) {
        return Ok(None);
    }
    if !super::is_bind(m) {
        return Err("idmapped mounts are bind mounts only".into());
    }
    let container = linux.map(|l| (l.uid_mappings().as_ref(), l.gid_mappings().as_ref()));
    let (uids, gids) = match (own, container) {
        ((Some(u), Some(g)), _) | ((None, None), Some((Some(u), Some(g)))) => (u, g),
        ((None, None), _) => {
            return Err("idmap needs uidMappings and gidMappings, on the mount or for the container's user namespace".into())
        }
        _ => return Err("uidMappings and gidMappings go together".into()),
    };
    if uids.is_empty() || gids.is_empty() {
        return Err("idmap needs at least one uid and one gid mapping".into());
    }
    Ok(Some(Idmap {
        uids: uids.clone(),
        gids: gids.clone(),
        recursive: option == Some(true),
    }))
}

/// Binds the mount tree at `src` onto `dest` with every mount of it
/// idmapped: for a caller outside any container (the shim idmaps
/// containerd's rootfs layers this way).
pub fn bind_idmapped(
    src: &std::path::Path,
    dest: &std::path::Path,
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
) -> Result<(), RootfsError> {
    let failed = |what: &str, e: nix::Error| RootfsError::Idmap {
        src: src.display().to_string(),
        dest: dest.into(),
        why: format!("{what}: {e}"),
    };
    let private = nix::mount::MsFlags::MS_PRIVATE;
    let tree = mountapi::clone_tree(src, true, private).map_err(|e| failed("clone it", e))?;
    let idmap = Idmap {
        uids: uids.to_vec(),
        gids: gids.to_vec(),
        recursive: true,
    };
    apply(&tree, &idmap, &src.display().to_string(), dest)?;
    mountapi::attach(&tree, dest).map_err(|e| failed("attach it", e))
}

/// Idmaps the detached tree `tree` (mount `dest`, from `src`).
pub fn apply(
    tree: &OwnedFd,
    idmap: &Idmap,
    src: &str,
    dest: &std::path::Path,
) -> Result<(), RootfsError> {
    let failed = |why: String| RootfsError::Idmap {
        src: src.into(),
        dest: dest.into(),
        why,
    };
    let userns = crate::namespaces::user_namespace_with(&idmap.uids, &idmap.gids)
        .map_err(|e| failed(e.to_string()))?;
    mountapi::idmap(tree, &userns, idmap.recursive).map_err(|e| {
        failed(format!(
            "the kernel refused to idmap it ({e}): its filesystem or this kernel has no idmapped mounts"
        ))
    })
}

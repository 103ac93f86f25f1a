//! The container's filesystem view: the spec's mounts in order, /dev,
//! pivot_root (or move + chroot), and the final touches that need the new
//! root (sysctls, masked and read-only paths, a read-only root).

mod cgroup;
pub(crate) use cgroup::binds as cgroup_binds;
pub use devices::reopen_dev_null;
mod copyup;
mod devices;
mod guard;
mod hostfs;
pub mod idmap;
mod jail;
pub(crate) mod mountapi;
pub mod mountinfo;
pub mod options;
pub mod path;
pub mod sources;
mod target;

use crate::error::{Context, OsError};
use crate::procfs::Procfs;
pub use jail::{pivot, Jail};
use nix::fcntl::OFlag;
use nix::mount::{mount, MsFlags};
use nix::sys::stat::Mode;
use nix::sys::statvfs::{statvfs, FsFlags};
use oci_spec::runtime::{Mount, Spec};
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use target::Root;

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("mount {src} to {dest} ({typ}): {source}")]
    Mount {
        src: String,
        dest: PathBuf,
        typ: String,
        source: nix::Error,
    },
    #[error("linux.devices: {0}")]
    DeviceConflict(String),
    #[error(transparent)]
    Path(#[from] path::PathError),
    #[error(transparent)]
    Os(#[from] OsError),
    #[error("sysctl {key}: {source}")]
    Sysctl { key: String, source: std::io::Error },
    #[error("mount destination {dest}: {why}")]
    Refused { dest: PathBuf, why: &'static str },
    #[error("{path}: {why}")]
    Unsafe { path: PathBuf, why: &'static str },
    #[error("mount {src} to {dest} (idmap): {why}")]
    Idmap {
        src: String,
        dest: PathBuf,
        why: String,
    },
    #[error("mount destination {dest} moved to {now} while being mounted")]
    Moved { dest: PathBuf, now: PathBuf },
}

pub(crate) fn mount_err<'a>(
    src: impl AsRef<Path> + 'a,
    dest: &'a Path,
    typ: &'a str,
) -> impl FnOnce(nix::Error) -> RootfsError + 'a {
    move |source| RootfsError::Mount {
        src: src.as_ref().display().to_string(),
        dest: dest.to_path_buf(),
        typ: typ.to_string(),
        source,
    }
}

/// What failed at a mount destination, as errors name it.
fn at_dest(dest: &Path, what: &str) -> String {
    format!("mount destination {}: {what}", dest.display())
}

/// Everything the container's mounts need, resolved by the caller.
pub struct Ctx<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    /// Whether the container runs in a user namespace (its own, or the
    /// one berth runs in): devices are bound, not made.
    pub userns: bool,
    /// The container's cgroup path, shown by a `cgroup` mount.
    pub cgroup: &'a Path,
    /// Whether the container has a cgroup namespace of its own.
    pub cgroupns: bool,
    pub jail: Jail,
    /// Bind sources cloned before a new user namespace was entered.
    pub sources: &'a sources::Sources,
    /// Whether the process's terminal is bound at /dev/console.
    pub console: bool,
}

/// The propagation the container's tree gets. By default nothing mounted
/// for the container reaches the host's mount table; `rshared`
/// (Kubernetes' Bidirectional) asks for the host's peer groups to be kept,
/// both ways.
pub fn root_propagation(spec: &Spec) -> MsFlags {
    spec.linux()
        .as_ref()
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(options::propagation)
        .unwrap_or(MsFlags::MS_SLAVE | MsFlags::MS_REC)
}

/// Mounts the rootfs and every spec mount under it, then builds /dev.
/// Runs in the container's mount namespace, before pivot_root; without
/// one (`Jail::Chroot`) it only makes the devices, in the image's /dev,
/// as runc does.
pub fn prepare(ctx: &Ctx) -> Result<(), RootfsError> {
    let linux = ctx.spec.linux().as_ref();
    let devices = linux.and_then(|l| l.devices().as_deref()).unwrap_or(&[]);
    if ctx.jail == Jail::Chroot {
        return devices::create_all(&Root::open(ctx.rootfs)?, true, devices, ctx.userns);
    }
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        root_propagation(ctx.spec),
        None::<&str>,
    )
    .context("set the propagation of /")?;
    private_parent(ctx.rootfs)?;
    mount(
        Some(ctx.rootfs),
        ctx.rootfs,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(mount_err(ctx.rootfs, ctx.rootfs, "bind"))?;
    let root = Root::open(ctx.rootfs)?;
    let mounts = ctx.spec.mounts().as_deref().unwrap_or(&[]);
    let mut read_only_later = Vec::new();
    for (i, m) in mounts.iter().enumerate() {
        read_only_later.extend(mount_one(ctx, &root, m, ctx.sources.get(i))?);
    }
    let own_dev = !mounts
        .iter()
        .any(|m| m.destination() == Path::new("/dev") && is_bind(m));
    devices::create_all(&root, own_dev, devices, ctx.userns)?;
    if ctx.console {
        // The terminal is bound there after pivot_root; a read-only /dev
        // can only take its mount point now.
        root.make(&root.join(Path::new("/dev/console"))?, false)?;
    }
    for later in &read_only_later {
        let at = root.pin(&later.dest)?;
        remount(&at.path(), later.flags).map_err(mount_err(
            "",
            &later.dest,
            "read-only remount",
        ))?;
    }
    Ok(())
}

/// Makes the mount points of `mounts` ((destination, source) pairs) in
/// the rootfs, a directory for a directory source, else a file, as runc
/// does before a restore: CRIU mounts onto them but makes none, and a
/// rootfs restored elsewhere (podman's exported checkpoints) lacks them.
/// Each source is bound on its mount point meanwhile, and all are unbound
/// at the end (runc too), so that the mount point of a mount nested in
/// another is made in that one's source. Call it in a mount namespace of
/// the caller's own.
pub fn make_mount_points(rootfs: &Path, mounts: &[(String, String)]) -> Result<(), RootfsError> {
    let root = Root::open(rootfs)?;
    let mut bound: Vec<PathBuf> = Vec::new();
    let made = mounts.iter().try_for_each(|(dest, source)| {
        let inside = Path::new(dest).strip_prefix("/").unwrap_or(Path::new(dest));
        let target = rootfs.join(inside);
        root.make(&target, Path::new(source).is_dir())?;
        let none: Option<&str> = None;
        mount(
            Some(source.as_str()),
            &target,
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        )
        .context(format!(
            "bind {source} on {} for a moment",
            target.display()
        ))?;
        bound.push(target);
        Ok::<(), RootfsError>(())
    });
    for target in bound.iter().rev() {
        let _ = nix::mount::umount2(target, nix::mount::MntFlags::MNT_DETACH);
    }
    made
}

/// This process's /proc/self/mountinfo.
pub(crate) fn own_mountinfo() -> Result<String, RootfsError> {
    let file = "/proc/self/mountinfo";
    Ok(std::fs::read_to_string(file).context(format!("read {file}"))?)
}

/// `p` as mountinfo names it, symlinks resolved.
pub(crate) fn real_path(p: &Path) -> PathBuf {
    p.canonicalize().unwrap_or_else(|_| p.to_path_buf())
}

/// Makes the mount that holds the rootfs private if it is shared:
/// pivot_root refuses a shared parent, and the container's own mounts
/// (its /proc, /dev...) would otherwise appear in the host's rootfs.
fn private_parent(rootfs: &Path) -> Result<(), RootfsError> {
    let text = own_mountinfo()?;
    let real = real_path(rootfs);
    let entries = mountinfo::parse(&text);
    let parent = entries
        .iter()
        .filter(|e| real.starts_with(&e.mount_point))
        .max_by_key(|e| e.mount_point.len());
    match parent {
        Some(p) if p.shared => mount(
            None::<&str>,
            p.mount_point.as_str(),
            None::<&str>,
            MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(mount_err("", Path::new(&p.mount_point), "private")),
        _ => Ok(()),
    }
}

/// A read-only tmpfs, mounted writable first: the mount points, devices
/// and links below it (a read-only /dev's pts, shm, null...) are made
/// after it, and it turns read-only once they are, as runc does.
struct ReadOnlyLater {
    dest: PathBuf,
    /// Its per-mount flags, read-only included, for the final remount.
    flags: MsFlags,
}

/// The host path a bind mount binds (relative to the bundle), or `None`
/// for a mount that is no bind; a bind without a source gets an empty
/// path, which the mount refuses.
fn bind_source(m: &Mount, bundle: &Path) -> Option<PathBuf> {
    is_bind(m).then(|| {
        m.source()
            .as_ref()
            .map(|s| bundle.join(s))
            .unwrap_or_default()
    })
}

pub(crate) fn is_bind(m: &Mount) -> bool {
    m.typ().as_deref() == Some("bind")
        || m.options()
            .iter()
            .flatten()
            .any(|o| o == "bind" || o == "rbind")
}

fn mount_one(
    ctx: &Ctx,
    root: &Root,
    m: &Mount,
    cloned: Option<&sources::Source>,
) -> Result<Option<ReadOnlyLater>, RootfsError> {
    let dest = path::secure_join(ctx.rootfs, m.destination())?;
    let mut opts = options::parse_all(m.options().iter().flatten());
    let typ = m.typ().as_deref().unwrap_or("none");
    if typ == "tmpfs" {
        inherit_mode(&mut opts, &dest);
    }
    let inside = Path::new("/").join(dest.strip_prefix(ctx.rootfs).unwrap_or(&dest));
    guard::check_ordinary_dir(ctx.rootfs, m.destination(), typ)?;
    guard::check_proc(
        &inside,
        typ,
        is_bind(m).then(|| m.source().as_deref()).flatten(),
    )?;
    let bind_src = bind_source(m, ctx.bundle);
    // A directory, or an empty file for a file bind.
    let dir = match cloned {
        Some(c) => c.dir,
        None => bind_src.as_ref().is_none_or(|s| s.is_dir() || !s.exists()),
    };
    root.make(&dest, dir)?;
    if let (Some(src), Some(c)) = (&bind_src, cloned) {
        mountapi::attach(&c.tree, &root.pin(&dest)?.path())
            .map_err(mount_err(src, &dest, "bind"))?;
        bind_flags(root, src, &dest, &opts)?;
    } else if let Some(src) = bind_src {
        bind(root, &src, &dest, &opts)?;
    } else if typ == "cgroup" {
        cgroup::mount_cgroup(root, &dest, &opts, ctx.cgroup, ctx.cgroupns)?;
    } else {
        mount_fs(ctx, root, m, &dest, typ, &opts)?;
    }
    let later =
        (typ == "tmpfs" && opts.flags.contains(MsFlags::MS_RDONLY)).then(|| ReadOnlyLater {
            dest: dest.clone(),
            flags: opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT),
        });
    if !opts.recursive.is_empty() {
        set_recursive(root, &dest, opts.recursive)?;
    }
    for p in &opts.propagation {
        let at = root.pin(&dest)?;
        mount(None::<&str>, &at.path(), None::<&str>, *p, None::<&str>).map_err(mount_err(
            "",
            &dest,
            "propagation",
        ))?;
    }
    Ok(later)
}

/// The `r*` options (`rro`, `rnosuid`...), on the mount at `dest` and
/// every mount below it: what `ro` would leave writable in a submount.
fn set_recursive(root: &Root, dest: &Path, attr: options::RecAttr) -> Result<(), RootfsError> {
    let at = root.pin(dest)?;
    mountapi::set_recursive(&at.path(), attr).map_err(|source| match source {
        nix::errno::Errno::ENOSYS => RootfsError::Refused {
            dest: dest.to_path_buf(),
            why: "recursive mount options (rro, rnosuid, ...) need mount_setattr(2), which this kernel lacks",
        },
        source => mount_err("", dest, "mount_setattr")(source),
    })
}

/// A filesystem (tmpfs, proc, mqueue...) mounted at `dest`, filled from
/// what it covers when `tmpcopyup` asks.
fn mount_fs(
    ctx: &Ctx,
    root: &Root,
    m: &Mount,
    dest: &Path,
    typ: &str,
    opts: &options::Parsed,
) -> Result<(), RootfsError> {
    let at = root.pin(dest)?;
    let covered = match opts.tmpcopyup && typ == "tmpfs" {
        true => {
            Some(copyup::Covered::open(&at.path()).context(at_dest(dest, "open for tmpcopyup"))?)
        }
        false => None,
    };
    let src = m
        .source()
        .as_ref()
        .map_or(typ.to_string(), |s| s.display().to_string());
    let label = ctx
        .spec
        .linux()
        .as_ref()
        .and_then(|l| l.mount_label().as_deref());
    let data = crate::lsm::mount_data(m, opts.data.join(","), label);
    // A read-only tmpfs turns read-only at the end (see ReadOnlyLater).
    let flags = match typ {
        "tmpfs" => opts.flags - MsFlags::MS_RDONLY,
        _ => opts.flags,
    };
    mount(
        Some(src.as_str()),
        &at.path(),
        Some(typ),
        flags,
        Some(data.as_str()).filter(|d| !d.is_empty()),
    )
    .map_err(mount_err(&src, dest, typ))?;
    if let Some(c) = covered {
        // Pinned again: the first pin still names the covered directory.
        c.copy_into(&root.pin(dest)?.path())
            .context(at_dest(dest, "tmpcopyup"))?;
    }
    Ok(())
}

/// A tmpfs without `mode=` over a directory of the image takes that
/// directory's mode, as runc gives it: an image's `/tmp` keeps its sticky
/// or setgid bits. It goes into the mount's data, where /proc/self/mounts
/// shows it. An explicit `mode=` is what the config asked for.
fn inherit_mode(opts: &mut options::Parsed, dest: &Path) {
    if opts.data.iter().any(|d| d.starts_with("mode=")) {
        return;
    }
    if let Some(meta) = std::fs::metadata(dest).ok().filter(|m| m.is_dir()) {
        opts.data.push(format!("mode={:o}", meta.mode() & 0o7777));
    }
}

/// A bind mount, remounted with its flags: a bind ignores flags like
/// `ro` on the first mount call.
/// `dest` is pinned again for the remount, to reach the new mount.
pub(crate) fn bind(
    root: &Root,
    src: &Path,
    dest: &Path,
    opts: &options::Parsed,
) -> Result<(), RootfsError> {
    let base = MsFlags::MS_BIND | (opts.flags & MsFlags::MS_REC);
    let in_rootfs = root.pin_source(src)?;
    let from = in_rootfs
        .as_ref()
        .map_or_else(|| src.to_path_buf(), |p| p.path());
    mount(
        Some(&from),
        &root.pin(dest)?.path(),
        None::<&str>,
        base,
        None::<&str>,
    )
    .map_err(mount_err(src, dest, "bind"))?;
    bind_flags(root, src, dest, opts)
}

/// The flags of a bind mount just made at `dest`, by a remount.
fn bind_flags(
    root: &Root,
    src: &Path,
    dest: &Path,
    opts: &options::Parsed,
) -> Result<(), RootfsError> {
    let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT);
    if !extra.is_empty() {
        remount(&root.pin(dest)?.path(), extra).map_err(mount_err(src, dest, "bind remount"))?;
    }
    Ok(())
}

/// Bind-remounts with `flags`; if the kernel refuses because the mount has
/// locked flags (nosuid, nodev... inherited in a user namespace), keeps them.
pub(crate) fn remount(dest: &Path, flags: MsFlags) -> nix::Result<()> {
    let base = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    match mount(None::<&str>, dest, None::<&str>, base | flags, None::<&str>) {
        Err(nix::errno::Errno::EPERM) => {
            let locked = locked_flags(dest)?;
            mount(
                None::<&str>,
                dest,
                None::<&str>,
                base | flags | locked,
                None::<&str>,
            )
        }
        r => r,
    }
}

fn locked_flags(dest: &Path) -> nix::Result<MsFlags> {
    // The kernel's statfs flag; nix names it only on glibc.
    const ST_RELATIME: FsFlags = FsFlags::from_bits_retain(4096);
    let f = statvfs(dest)?.flags();
    let map = [
        (FsFlags::ST_RDONLY, MsFlags::MS_RDONLY),
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NOATIME, MsFlags::MS_NOATIME),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
        (ST_RELATIME, MsFlags::MS_RELATIME),
    ];
    Ok(map
        .iter()
        .filter(|(s, _)| f.contains(*s))
        .fold(MsFlags::empty(), |acc, (_, m)| acc | *m))
}

/// The steps that need the container's own `/`: sysctls, masked and
/// read-only paths, a read-only root and the root's final propagation.
/// Jailed by chroot alone, the container gets none but the sysctls:
/// the mounts would change the caller's mount table.
pub fn finalize(spec: &Spec, jail: Jail) -> Result<(), RootfsError> {
    let linux = spec.linux().as_ref();
    let sysctls = linux
        .and_then(|l| l.sysctl().as_ref())
        .filter(|s| !s.is_empty());
    if let Some(sysctls) = sysctls {
        let proc = Procfs::open().context("open /proc for linux.sysctl")?;
        for (key, value) in sysctls {
            let file = format!("sys/{}", key.replace('.', "/"));
            proc.write(&file, value.as_bytes())
                .map_err(|source| RootfsError::Sysctl {
                    key: key.clone(),
                    source,
                })?;
        }
    }
    if jail == Jail::Chroot {
        return Ok(());
    }
    for p in linux
        .and_then(|l| l.readonly_paths().as_ref())
        .into_iter()
        .flatten()
    {
        readonly_path(Path::new(p))?;
    }
    let mut masks = Masks::default();
    for p in linux
        .and_then(|l| l.masked_paths().as_ref())
        .into_iter()
        .flatten()
    {
        masks.hide(Path::new(p))?;
    }
    if spec.root().as_ref().and_then(|r| r.readonly()) == Some(true) {
        remount(Path::new("/"), MsFlags::MS_RDONLY).context("remount / read-only")?;
    }
    let shared = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(options::propagation)
        .filter(|p| p.contains(MsFlags::MS_SHARED));
    if let Some(p) = shared {
        mount(None::<&str>, "/", None::<&str>, p, None::<&str>).context("make / shared")?;
    }
    Ok(())
}

fn readonly_path(p: &Path) -> Result<(), RootfsError> {
    if !p.exists() {
        return Ok(());
    }
    let flags = MsFlags::MS_BIND | MsFlags::MS_REC;
    mount(Some(p), p, None::<&str>, flags, None::<&str>).map_err(mount_err(p, p, "bind"))?;
    remount(p, MsFlags::MS_RDONLY | MsFlags::MS_REC).map_err(mount_err(p, p, "read-only remount"))
}

/// The masked paths: a file lies under /dev/null, a directory under an
/// empty read-only tmpfs, one for all of them (as runc 1.3 and later share
/// it); a path listed twice is masked once.
#[derive(Default)]
struct Masks {
    done: std::collections::HashSet<PathBuf>,
    first_dir: Option<PathBuf>,
    null: Option<OwnedFd>,
}

impl Masks {
    fn hide(&mut self, p: &Path) -> Result<(), RootfsError> {
        if !self.done.insert(p.to_path_buf()) {
            return Ok(());
        }
        let Ok(meta) = p.metadata() else {
            return Ok(());
        };
        if !meta.is_dir() {
            if self.null.is_none() {
                self.null = Some(null_device()?);
            }
            let null = self.null.as_ref().expect("opened above");
            // Opened as mount(2) would resolve it, links followed.
            let flags = OFlag::O_PATH | OFlag::O_CLOEXEC;
            let bound = nix::fcntl::open(p, flags, Mode::empty())
                .and_then(|target| mountapi::bind_file(null, &target));
            return bound.map_err(mount_err("/dev/null", p, "mask"));
        }
        let (src, flags, typ) = match &self.first_dir {
            Some(first) => (first.as_path(), MsFlags::MS_BIND, None),
            None => (Path::new("tmpfs"), MsFlags::MS_RDONLY, Some("tmpfs")),
        };
        mount(Some(src), p, typ, flags, None::<&str>).map_err(mount_err(src, p, "mask"))?;
        match self.first_dir {
            Some(_) => remount(p, MsFlags::MS_RDONLY).map_err(mount_err(src, p, "mask"))?,
            None => self.first_dir = Some(p.to_path_buf()),
        }
        Ok(())
    }
}

/// The container's /dev/null, opened without following a link and checked
/// to be the null device (CVE-2025-31133): a /dev/null the image or a
/// shared volume swapped for a link to a procfs file would otherwise be
/// bound, writable, over each masked path.
fn null_device() -> Result<OwnedFd, RootfsError> {
    let path = Path::new("/dev/null");
    let flags = OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd =
        nix::fcntl::open(path, flags, Mode::empty()).context("open /dev/null to mask paths")?;
    let st = nix::sys::stat::fstat(&fd).context("stat /dev/null")?;
    let is_char = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
    if !is_char || st.st_rdev != nix::sys::stat::makedev(1, 3) {
        return Err(RootfsError::Unsafe {
            path: path.to_path_buf(),
            why:
                "is not the null device (character device 1:3), so it cannot mask linux.maskedPaths",
        });
    }
    Ok(fd)
}

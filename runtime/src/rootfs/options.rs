//! Mount options as config.json spells them, turned into mount(2) flags.

use nix::mount::MsFlags;

/// What one option string does to a mount.
#[derive(Debug, PartialEq, Eq)]
pub enum Opt {
    /// Sets (true) or clears (false) a flag.
    Flag(MsFlags, bool),
    /// A propagation change applied after the mount exists.
    Propagation(MsFlags),
    /// Copy the destination's old content into a new tmpfs (podman).
    TmpCopyUp,
    /// A mount attribute set (true) or cleared (false) on the whole tree
    /// with mount_setattr(2) (`rro`, `rnosuid`, ...).
    Recursive(u64, bool),
    /// An idmapped bind mount: `idmap` (the top mount) or `ridmap` (every
    /// mount of the tree, true).
    Idmap(bool),
    /// Passed to the filesystem as data (`size=64k`, `mode=755`, ...).
    Data,
}

const FLAGS: &[(&str, MsFlags, bool)] = &[
    ("ro", MsFlags::MS_RDONLY, true),
    ("rw", MsFlags::MS_RDONLY, false),
    ("nosuid", MsFlags::MS_NOSUID, true),
    ("suid", MsFlags::MS_NOSUID, false),
    ("nodev", MsFlags::MS_NODEV, true),
    ("dev", MsFlags::MS_NODEV, false),
    ("noexec", MsFlags::MS_NOEXEC, true),
    ("exec", MsFlags::MS_NOEXEC, false),
    ("sync", MsFlags::MS_SYNCHRONOUS, true),
    ("async", MsFlags::MS_SYNCHRONOUS, false),
    ("dirsync", MsFlags::MS_DIRSYNC, true),
    ("remount", MsFlags::MS_REMOUNT, true),
    ("mand", MsFlags::MS_MANDLOCK, true),
    ("nomand", MsFlags::MS_MANDLOCK, false),
    ("noatime", MsFlags::MS_NOATIME, true),
    ("atime", MsFlags::MS_NOATIME, false),
    ("nodiratime", MsFlags::MS_NODIRATIME, true),
    ("diratime", MsFlags::MS_NODIRATIME, false),
    ("relatime", MsFlags::MS_RELATIME, true),
    ("norelatime", MsFlags::MS_RELATIME, false),
    ("strictatime", MsFlags::MS_STRICTATIME, true),
    ("nostrictatime", MsFlags::MS_STRICTATIME, false),
    ("lazytime", MsFlags::MS_LAZYTIME, true),
    ("nolazytime", MsFlags::MS_LAZYTIME, false),
    ("silent", MsFlags::MS_SILENT, true),
    ("loud", MsFlags::MS_SILENT, false),
    ("iversion", MsFlags::MS_I_VERSION, true),
    ("noiversion", MsFlags::MS_I_VERSION, false),
    ("bind", MsFlags::MS_BIND, true),
    ("rbind", MsFlags::MS_BIND.union(MsFlags::MS_REC), true),
    ("defaults", MsFlags::empty(), true),
];

/// The recursive options, as runc names them. The access-time ones are
/// one field of the kernel's, chosen rather than set: "clearing" one of
/// them goes back to the kernel's default, relatime.
const RECURSIVE: &[(&str, u64, bool)] = &[
    ("rro", libc::MOUNT_ATTR_RDONLY, true),
    ("rrw", libc::MOUNT_ATTR_RDONLY, false),
    ("rnosuid", libc::MOUNT_ATTR_NOSUID, true),
    ("rsuid", libc::MOUNT_ATTR_NOSUID, false),
    ("rnodev", libc::MOUNT_ATTR_NODEV, true),
    ("rdev", libc::MOUNT_ATTR_NODEV, false),
    ("rnoexec", libc::MOUNT_ATTR_NOEXEC, true),
    ("rexec", libc::MOUNT_ATTR_NOEXEC, false),
    ("rnodiratime", libc::MOUNT_ATTR_NODIRATIME, true),
    ("rdiratime", libc::MOUNT_ATTR_NODIRATIME, false),
    ("rnosymfollow", libc::MOUNT_ATTR_NOSYMFOLLOW, true),
    ("rsymfollow", libc::MOUNT_ATTR_NOSYMFOLLOW, false),
    ("rnoatime", libc::MOUNT_ATTR_NOATIME, true),
    ("ratime", libc::MOUNT_ATTR_NOATIME, false),
    ("rstrictatime", libc::MOUNT_ATTR_STRICTATIME, true),
    ("rnostrictatime", libc::MOUNT_ATTR_STRICTATIME, false),
    ("rrelatime", libc::MOUNT_ATTR_RELATIME, true),
    ("rnorelatime", libc::MOUNT_ATTR_RELATIME, false),
];

/// What mount_setattr(2) sets and clears on a mount tree.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
pub struct RecAttr {
    pub set: u64,
    pub clear: u64,
}

impl RecAttr {
    pub fn is_empty(&self) -> bool {
        self.set == 0 && self.clear == 0
    }

    fn apply(&mut self, attr: u64, on: bool) {
        let atime = attr & libc::MOUNT_ATTR__ATIME == attr;
        if atime {
            // One access-time mode at a time: the kernel wants the whole
            // field cleared and the chosen mode (relatime is 0) set.
            self.clear |= libc::MOUNT_ATTR__ATIME;
            self.set &= !libc::MOUNT_ATTR__ATIME;
            self.set |= if on { attr } else { libc::MOUNT_ATTR_RELATIME };
        } else if on {
            self.set |= attr;
            self.clear &= !attr;
        } else {
            self.clear |= attr;
            self.set &= !attr;
        }
    }
}

/// Every option name berth understands, for `berth features`.
pub fn known() -> Vec<String> {
    let mut all: Vec<String> = FLAGS.iter().map(|(n, _, _)| n.to_string()).collect();
    all.extend(RECURSIVE.iter().map(|(n, _, _)| n.to_string()));
    for base in ["private", "shared", "slave", "unbindable"] {
        all.push(base.to_string());
        all.push(format!("r{base}"));
    }
    all.extend(["tmpcopyup", "idmap", "ridmap"].map(String::from));
    all
}

/// Maps a propagation name (`rslave`, `private`, ...) to its flags.
pub fn propagation(name: &str) -> Option<MsFlags> {
    let (rec, base) = name
        .strip_prefix('r')
        .map_or((MsFlags::empty(), name), |b| (MsFlags::MS_REC, b));
    let flag = match base {
        "private" => MsFlags::MS_PRIVATE,
        "shared" => MsFlags::MS_SHARED,
        "slave" => MsFlags::MS_SLAVE,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        _ => return None,
    };
    Some(flag | rec)
}

pub fn parse(o: &str) -> Opt {
    if let Some((_, flag, set)) = FLAGS.iter().find(|(n, _, _)| *n == o) {
        return Opt::Flag(*flag, *set);
    }
    if let Some((_, attr, on)) = RECURSIVE.iter().find(|(n, _, _)| *n == o) {
        return Opt::Recursive(*attr, *on);
    }
    if let Some(p) = propagation(o) {
        return Opt::Propagation(p);
    }
    match o {
        "tmpcopyup" => Opt::TmpCopyUp,
        "idmap" => Opt::Idmap(false),
        "ridmap" => Opt::Idmap(true),
        _ => Opt::Data,
    }
}

/// A mount's options folded into flags, propagation and data.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    pub tmpcopyup: bool,
    pub recursive: RecAttr,
    /// `idmap` (Some(false)) or `ridmap` (Some(true)).
    pub idmap: Option<bool>,
}

impl Default for Parsed {
    fn default() -> Self {
        Parsed {
            flags: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            tmpcopyup: false,
            recursive: RecAttr::default(),
            idmap: None,
        }
    }
}

pub fn parse_all<'a>(opts: impl IntoIterator<Item = &'a String>) -> Parsed {
    let mut p = Parsed::default();
    for o in opts {
        match parse(o) {
            Opt::Flag(f, true) => p.flags |= f,
            Opt::Flag(f, false) => p.flags &= !f,
            Opt::Propagation(f) => p.propagation.push(f),
            Opt::TmpCopyUp => p.tmpcopyup = true,
            Opt::Recursive(attr, on) => p.recursive.apply(attr, on),
            Opt::Idmap(recursive) => p.idmap = Some(recursive),
            Opt::Data => p.data.push(o.clone()),
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn folds_flags_in_order() {
        let p = parse_all(&strings(&[
            "ro",
            "nosuid",
            "rw",
            "nodev",
            "mode=755",
            "size=65536k",
        ]));
        assert_eq!(p.flags, MsFlags::MS_NOSUID | MsFlags::MS_NODEV);
        assert_eq!(p.data, strings(&["mode=755", "size=65536k"]));
    }

    #[test]
    fn rbind_and_propagation() {
        let p = parse_all(&strings(&["rbind", "ro", "rprivate"]));
        assert_eq!(
            p.flags,
            MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY
        );
        assert_eq!(p.propagation, vec![MsFlags::MS_PRIVATE | MsFlags::MS_REC]);
    }

    #[test]
    fn propagation_names() {
        assert_eq!(propagation("slave"), Some(MsFlags::MS_SLAVE));
        assert_eq!(
            propagation("rshared"),
            Some(MsFlags::MS_SHARED | MsFlags::MS_REC)
        );
        assert_eq!(
            propagation("runbindable"),
            Some(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC)
        );
        assert_eq!(propagation("ro"), None);
        assert_eq!(propagation("rbind"), None);
    }

    #[test]
    fn recursive_attributes() {
        let p = parse_all(&strings(&["rbind", "rro", "rnosuid", "rrw", "rnoatime"]));
        assert_eq!(p.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        let atime = libc::MOUNT_ATTR__ATIME;
        assert_eq!(
            p.recursive,
            RecAttr {
                set: libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NOATIME,
                clear: libc::MOUNT_ATTR_RDONLY | atime,
            }
        );
        let p = parse_all(&strings(&["rstrictatime", "rnostrictatime"]));
        assert_eq!(
            p.recursive,
            RecAttr {
                set: libc::MOUNT_ATTR_RELATIME,
                clear: atime,
            }
        );
        assert!(p.data.is_empty());
    }

    #[test]
    fn tmpcopyup_and_idmap() {
        assert_eq!(parse("tmpcopyup"), Opt::TmpCopyUp);
        assert_eq!(parse_all(&strings(&["bind", "idmap"])).idmap, Some(false));
        assert_eq!(parse_all(&strings(&["ridmap"])).idmap, Some(true));
        assert_eq!(parse("uid=5"), Opt::Data);
    }
}

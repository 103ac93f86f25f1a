//! Resolving a container path on the host without leaving the rootfs:
//! symlinks are followed as if the rootfs were `/`, and `..` stops at it.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

const MAX_LINKS: usize = 255;

#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {path} in the rootfs: {why}")]
pub struct PathError {
    pub path: PathBuf,
    pub why: String,
}

/// `root` joined with `unsafe_path`, with every symlink on the way resolved
/// inside `root`. Components that do not exist yet are kept as given.
pub fn secure_join(root: &Path, unsafe_path: &Path) -> Result<PathBuf, PathError> {
    let fail = |why: &str| PathError {
        path: unsafe_path.to_path_buf(),
        why: why.to_string(),
    };
    let mut pending: Vec<OsString> = components(unsafe_path);
    pending.reverse();
    let mut resolved: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved
            .iter()
            .fold(root.to_path_buf(), |p, c| p.join(c))
            .join(&part);
        let Ok(meta) = candidate.symlink_metadata() else {
            resolved.push(part);
            continue;
        };
        if !meta.file_type().is_symlink() {
            resolved.push(part);
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(fail("too many levels of symbolic links"));
        }
        let target = std::fs::read_link(&candidate).map_err(|e| fail(&e.to_string()))?;
        if target.is_absolute() {
            resolved.clear();
        }
        pending.extend(components(&target).into_iter().rev());
    }
    Ok(resolved.iter().fold(root.to_path_buf(), |p, c| p.join(c)))
}

fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn links_stay_inside_the_root() {
        let root = std::env::temp_dir().join(format!("berth-sj-{}", std::process::id()));
        std::fs::create_dir_all(root.join("real/sub")).unwrap();
        symlink("/", root.join("escape")).unwrap();
        symlink("../../..", root.join("real/up")).unwrap();
        symlink("/real", root.join("abs")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        let j = |p: &str| secure_join(&root, Path::new(p)).unwrap();
        assert_eq!(j("/escape/etc/passwd"), root.join("etc/passwd"));
        assert_eq!(j("/real/up/x"), root.join("x"));
        assert_eq!(j("/abs/sub/new"), root.join("real/sub/new"));
        assert_eq!(j("/../../x"), root.join("x"));
        assert!(secure_join(&root, Path::new("/loop/x")).is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}

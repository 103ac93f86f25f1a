//! Files that readers may open at any moment (state.json, pid files, the
//! shim's bundle records): written whole or not at all.

use std::io::Write;
use std::path::Path;

/// Writes `data` to a temporary file beside `path`, flushes it to disk,
/// then renames it over `path`: a reader, or a reboot, finds the old
/// content or the new, never a part. On a full disk the temporary goes
/// and `path` keeps what it had.
pub fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(data)?;
        f.sync_all()
    });
    written
        .and_then(|()| std::fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("berth-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pid");
        write_atomically(&path, b"1").unwrap();
        write_atomically(&path, b"42").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"42");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["pid"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! The main package path a Go binary was built from, as its
//! `.go.buildinfo` ELF section records it (`path\t...` in the module info,
//! which `go version -m` prints). A binary's module major version is in
//! that path: containerd 2.x is built from
//! `github.com/containerd/containerd/v2/cmd/containerd`, 1.x from
//! `github.com/containerd/containerd/cmd/containerd`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const SECTION: &[u8] = b".go.buildinfo";
/// The section is a few hundred bytes; more than this is not Go's.
const MAX_SECTION: u64 = 64 << 10;
/// Section headers of a stripped binary are still a few kilobytes.
const MAX_HEADERS: u64 = 1 << 20;

/// The main package path of the Go binary at `exe`; None if it is not a
/// 64-bit little-endian ELF file with Go build info.
pub fn main_package(exe: &Path) -> Option<String> {
    let mut file = File::open(exe).ok()?;
    let info = section(&mut file, SECTION)?;
    let text = String::from_utf8_lossy(&info);
    let start = text.find("path\t")? + "path\t".len();
    let path = text[start..].split('\n').next()?;
    Some(path.to_owned())
}

fn u16_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?).into())
}

fn u32_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?).into())
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn read_at(file: &mut File, offset: u64, len: u64) -> Option<Vec<u8>> {
    file.seek(SeekFrom::Start(offset)).ok()?;
    let mut buf = vec![0; usize::try_from(len).ok()?];
    file.read_exact(&mut buf).ok()?;
    Some(buf)
}

/// The contents of the section called `name` (ELF64, little-endian).
fn section(file: &mut File, name: &[u8]) -> Option<Vec<u8>> {
    let header = read_at(file, 0, 64)?;
    // "\x7fELF", 64-bit (2), little-endian (1).
    if header[..4] != *b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return None;
    }
    let (table, entry) = (u64_at(&header, 0x28)?, u16_at(&header, 0x3a)?);
    let (count, names_index) = (u16_at(&header, 0x3c)?, u16_at(&header, 0x3e)?);
    if entry < 0x28 || entry * count > MAX_HEADERS {
        return None;
    }
    let headers = read_at(file, table, entry * count)?;
    let header_of = |i: u64| headers.get((i * entry) as usize..((i + 1) * entry) as usize);
    let names = header_of(names_index)?;
    let names = read_at(
        file,
        u64_at(names, 0x18)?,
        u64_at(names, 0x20)?.min(MAX_HEADERS),
    )?;
    (0..count).find_map(|i| {
        let h = header_of(i)?;
        let at = u32_at(h, 0)? as usize;
        let found =
            names.get(at..at + name.len())? == name && names.get(at + name.len()) == Some(&0);
        let size = u64_at(h, 0x20)?;
        (found && size <= MAX_SECTION)
            .then(|| read_at(file, u64_at(h, 0x18)?, size))
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_without_go_build_info_has_no_main_package() {
        // The test binary is Rust: an ELF file without the section.
        let me = std::env::current_exe().unwrap();
        assert_eq!(main_package(&me), None);
        assert_eq!(main_package(Path::new("/nonexistent")), None);
        let script = std::env::temp_dir().join(format!("berth-go-build-{}", std::process::id()));
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        assert_eq!(main_package(&script), None);
        std::fs::remove_file(&script).unwrap();
    }

    /// A Go binary of this host, if one is installed (containerd's own are).
    #[test]
    fn a_go_binary_names_its_main_package() {
        let Some(bin) = ["/usr/bin/containerd", "/usr/bin/ctr"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists())
        else {
            return eprintln!("skipped: no Go binary installed");
        };
        let path = main_package(bin).expect("a Go binary has build info");
        assert!(
            path.starts_with("github.com/containerd/containerd"),
            "{path}"
        );
    }
}

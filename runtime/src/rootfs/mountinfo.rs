//! The few fields of /proc/self/mountinfo that berth needs.

pub struct Entry {
    /// The directory of the filesystem that is mounted (`/` for all of it).
    pub root: String,
    pub mount_point: String,
    /// In a peer group (`shared:N`): mounts below it propagate.
    pub shared: bool,
    pub fs_type: String,
    pub super_opts: String,
}

/// The mounts as this process sees them: of several mounts at one point
/// only the last, which covers the others, is kept (an empty tmpfs over
/// a hybrid host's cgroup2, say, hides it).
pub fn parse(text: &str) -> Vec<Entry> {
    let mut seen = std::collections::HashSet::new();
    let mut visible: Vec<Entry> = all(text)
        .into_iter()
        .rev()
        .filter(|e| seen.insert(e.mount_point.clone()))
        .collect();
    visible.reverse();
    visible
}

/// Every mount, covered ones included, parents before their children.
pub fn all(text: &str) -> Vec<Entry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Entry> {
    let (left, right) = line.split_once(" - ")?;
    let mut l = left.split(' ');
    let root = unescape(l.nth(3)?);
    let mount_point = unescape(l.next()?);
    let shared = l.skip(1).any(|f| f.starts_with("shared:"));
    let mut r = right.split(' ');
    let fs_type = r.next()?.to_string();
    let super_opts = r.nth(1).unwrap_or("").to_string();
    Some(Entry {
        root,
        mount_point,
        shared,
        fs_type,
        super_opts,
    })
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 1..i + 4)
            .and_then(|o| u8::from_str_radix(o, 8).ok());
        match code {
            Some(c) => {
                out.push(c as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_covered_mount_is_not_seen() {
        let text = "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                    90 41 0:50 / /sys/fs/cgroup/unified rw - tmpfs none rw\n";
        let e = parse(text);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].fs_type, "tmpfs");
    }

    #[test]
    fn parses_cgroup_lines() {
        let text = "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:5 - cgroup2 cgroup2 rw\n\
                    50 27 0:40 / /mnt/a\\040b rw - tmpfs none rw\n";
        let e = parse(text);
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].mount_point, "/sys/fs/cgroup/cpu");
        assert_eq!(e[0].root, "/");
        assert_eq!(e[0].fs_type, "cgroup");
        assert_eq!(e[0].super_opts, "rw,cpu");
        assert_eq!(e[1].fs_type, "cgroup2");
        assert!(e[1].shared && !e[0].shared);
        assert_eq!(e[2].mount_point, "/mnt/a b");
    }
}

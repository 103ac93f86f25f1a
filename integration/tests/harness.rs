//! The checks the other scenarios rely on can fail: the leftovers check sees
//! a container that is still there, and a stray mount.

use integration::{s, Bundle};
use std::process::Command;

#[test]
fn leftovers_sees_a_parked_container() {
    let b = Bundle::new();
    b.create().assert_ok();
    let found = b.leftovers();
    assert!(found.iter().any(|f| f.starts_with("state:")), "{found:#?}");
    assert!(found.iter().any(|f| f.starts_with("process")), "{found:#?}");
    assert!(found.iter().any(|f| f.starts_with("cgroup:")), "{found:#?}");
    b.delete(&["--force"]).assert_ok();
    b.assert_no_leftovers();
}

#[test]
fn leftovers_sees_a_mount_in_the_test_dir() {
    let b = Bundle::new();
    let target = b.host_dir("mnt");
    let status = Command::new("mount")
        .args(["-t", "tmpfs", "tmpfs", s(&target)])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(b.leftovers(), [format!("mount: {}", s(&target))]);
}

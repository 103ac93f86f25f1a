//! What is left when the runtime is killed half-way, races itself or finds
//! its disk full: nothing that `delete --force` cannot remove, and a state
//! file that is whole or absent.

use integration::{berth_only, s, Bundle};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// `create` of `b` in the background, its output dropped.
fn spawn_create(b: &Bundle) -> Child {
    b.command()
        .args(["create", "--bundle", s(&b.path), &b.id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn create")
}

/// How long a whole `create` takes here, so that kills can be spread
/// over all of it whatever the machine's speed.
fn create_time(b: &Bundle) -> Duration {
    let began = Instant::now();
    b.create().assert_ok();
    let took = began.elapsed();
    b.delete(&["--force"]).assert_ok();
    took
}

/// SIGKILLs a `create` of `b` at `share` (0 to 1) of `whole`.
fn kill_create_at(b: &Bundle, whole: Duration, share: f64) {
    let mut create = spawn_create(b);
    std::thread::sleep(whole.mul_f64(share));
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(create.id() as libc::pid_t, libc::SIGKILL) };
    let _ = create.wait();
}

const KILLS: u32 = 20;

#[test]
fn delete_force_removes_all_a_create_killed_at_any_moment_made() {
    berth_only!("runc 1.1.5 leaves the cgroup and a parked init behind some kills");
    let b = Bundle::new();
    let whole = create_time(&b);
    for i in 0..KILLS {
        let share = f64::from(i) / f64::from(KILLS);
        kill_create_at(&b, whole, share);
        let out = b.delete(&["--force"]);
        assert_eq!(
            (out.code, out.stderr.as_str()),
            (0, ""),
            "kill at {share:.2} of {whole:?}: {out:?}"
        );
        b.assert_no_leftovers();
    }
}

#[test]
fn a_create_after_a_killed_create_of_the_id_works() {
    berth_only!("runc 1.1.5 refuses the id: its state directory is left");
    let mut b = Bundle::new();
    b.sh("echo started");
    let whole = create_time(&b);
    for i in 0..KILLS / 2 {
        let share = f64::from(i) / f64::from(KILLS / 2);
        kill_create_at(&b, whole, share);
        // A kill after the create's last record finds a created container.
        let state: Option<integration::Value> = serde_json::from_str(&b.state().stdout).ok();
        let finished = state.is_some_and(|s| s["status"] == "created");
        let again = b.create();
        match finished {
            true => again.assert_mentions("already exists"),
            false => again.assert_ok(),
        };
        assert_eq!(b.state_json()["status"], "created", "kill at {share:.2}");
        b.delete(&["--force"]).assert_ok();
        b.assert_no_leftovers();
    }
    let out = b.run();
    assert_eq!(out.assert_ok().stdout, "started\n");
}

#[test]
fn racing_deletes_of_one_id_all_succeed_and_print_nothing() {
    // The shims' cleanup runs `delete --force` just as (or just after)
    // the normal delete: each must exit 0 and print nothing.
    let b = Bundle::new();
    for _ in 0..5 {
        b.create().assert_ok();
        b.start().assert_ok();
        b.wait_status("stopped");
        let deletes: Vec<Child> = (0..8)
            .map(|i| {
                let mut cmd = b.command();
                cmd.arg("delete");
                if i > 0 {
                    cmd.arg("--force");
                }
                cmd.arg(&b.id)
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn delete")
            })
            .collect();
        for (i, delete) in deletes.into_iter().enumerate() {
            let out = delete.wait_with_output().expect("wait for delete");
            let said = String::from_utf8_lossy(&out.stderr).into_owned();
            // The plain delete may come last and find nothing.
            if i == 0 && said.contains("does not exist") {
                continue;
            }
            assert_eq!(
                (out.status.code(), said.as_str()),
                (Some(0), ""),
                "delete {i}"
            );
        }
        b.assert_no_leftovers();
    }
}

/// A tmpfs of a few pages at `b`'s state root, filled but for `free` bytes
/// (rounded down to whole pages by the filesystem).
struct SmallDisk {
    mount: std::path::PathBuf,
}

impl SmallDisk {
    fn under(b: &mut Bundle) -> SmallDisk {
        let mount = b.dir.join("small");
        std::fs::create_dir_all(&mount).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
            .arg(&mount)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount a small tmpfs");
        b.state_root = mount.join("root");
        SmallDisk { mount }
    }

    /// Fills the disk up; what is written next fails with ENOSPC.
    fn fill(&self) {
        use std::io::Write;
        let mut filler = std::fs::File::create(self.mount.join("filler")).unwrap();
        while filler.write_all(&[0u8; 4096]).is_ok() {}
    }

    fn free(&self) {
        std::fs::remove_file(self.mount.join("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let status = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.mount)
            .status();
        assert!(status.is_ok_and(|s| s.success()), "unmount the small tmpfs");
    }
}

/// The state file, if there is one, parses whole.
fn assert_state_whole(b: &Bundle) {
    let path = b.state_root.join(&b.id).join("state.json");
    if let Ok(data) = std::fs::read(&path) {
        let parsed: Result<integration::Value, _> = serde_json::from_slice(&data);
        assert!(parsed.is_ok(), "{} is cut short: {data:?}", path.display());
    }
}

/// Checks the state is whole on the full disk, then that `delete
/// --force` works there and, the disk gone, that nothing is left.
fn clean_up_whole(b: &Bundle, disk: SmallDisk) {
    assert_state_whole(b);
    b.delete(&["--force"]).assert_ok();
    disk.free();
    drop(disk);
    b.assert_no_leftovers();
}

#[test]
fn a_full_disk_fails_create_by_name_and_leaves_nothing() {
    let mut b = Bundle::new();
    let disk = SmallDisk::under(&mut b);
    std::fs::create_dir_all(&b.state_root).unwrap();
    disk.fill();
    let out = b.create();
    out.assert_failed();
    let why = "runc 1.1.5 says \"unable to store init state: %!w(<nil>)\"";
    integration::berth_message(&out, "no space left on device", why);
    clean_up_whole(&b, disk);
}

#[test]
fn a_full_disk_neither_fails_start_nor_cuts_the_state_short() {
    // start writes nothing (runc neither): the process runs, and is seen
    // running, on a disk full since create.
    let mut b = Bundle::new();
    b.sh("sleep 60");
    let disk = SmallDisk::under(&mut b);
    b.create().assert_ok();
    disk.fill();
    b.start().assert_ok();
    assert_eq!(b.state_json()["status"], "running");
    clean_up_whole(&b, disk);
}

#[test]
fn a_start_killed_once_init_was_released_leaves_a_running_container() {
    berth_only!("runc 1.1.5 goes by the fifo alone and calls it created");
    // What such a start did: write the exec fifo, and die before removing it.
    let mut b = Bundle::new();
    b.sh("sleep 60");
    b.create().assert_ok();
    let fifo = b.state_root.join(&b.id).join("exec.fifo");
    std::fs::write(&fifo, b"0").expect("release init through the exec fifo");
    integration::poll(
        "the container to be seen running",
        || b.state_json()["status"].clone(),
        |s| s == "running",
    );
    assert!(fifo.exists(), "the fifo of the killed start is still there");
    b.start().assert_failed();
    b.delete(&["--force"]).assert_ok();
    b.assert_no_leftovers();
}

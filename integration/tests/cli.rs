//! The command line itself: version, help, list, spec, flag spellings.

use integration::{berth_only, json, s, unified, Bundle, Value};

#[test]
fn version_first_line_names_berth() {
    berth_only!("runc's first line is `runc version X.Y.Z`");
    let out = Bundle::new().rt(&["--version"]);
    let first = out
        .assert_ok()
        .stdout
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned();
    assert!(first.starts_with("berth version "), "first line: {first:?}");
}

#[test]
fn version_names_the_commit_then_the_spec_version() {
    // runc's layout, which bug reports and `podman info` quote.
    let out = Bundle::new().rt(&["--version"]);
    let lines: Vec<&str> = out.assert_ok().stdout.lines().collect();
    assert!(lines.len() >= 3, "{out:?}");
    assert!(lines[1].starts_with("commit: "), "{out:?}");
    assert!(lines[2].starts_with("spec: 1."), "{out:?}");
}

#[test]
fn help_follows_runcs_layout_under_the_binarys_name() {
    // NAME:, then "   <binary> <command> - ...", as runc (urfave/cli) prints.
    let b = Bundle::new();
    let bin = integration::runtime()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    for cmd in ["create", "exec", "checkpoint", "restore", "features"] {
        for flag in ["-h", "--help"] {
            let out = b.rt(&[cmd, flag]);
            let lines: Vec<&str> = out.assert_ok().stdout.lines().collect();
            assert_eq!(lines.first(), Some(&"NAME:"), "{cmd} {flag}: {out:?}");
            let named = lines.get(1).map(|l| l.trim_start());
            assert!(
                named.is_some_and(|l| l.starts_with(&format!("{bin} {cmd}"))),
                "{cmd} {flag}: {out:?}"
            );
        }
    }
}

#[test]
fn an_unknown_command_is_named() {
    let out = Bundle::new().rt(&["foo", "-h"]);
    out.assert_failed()
        .assert_mentions("No help topic for 'foo'");
}

#[test]
fn help_lists_the_commands() {
    let out = Bundle::new().rt(&["--help"]);
    for command in [
        "create", "start", "run", "state", "kill", "delete", "list", "spec",
    ] {
        assert!(
            out.assert_ok().stdout.contains(command),
            "--help lacks {command}: {out:?}"
        );
    }
}

#[test]
fn list_prints_a_table() {
    let b = Bundle::new();
    b.create().assert_ok();
    let out = b.rt(&["list"]);
    let lines: Vec<&str> = out.assert_ok().stdout.lines().collect();
    assert!(
        lines[0]
            .split_whitespace()
            .eq(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]),
        "{out:?}"
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        (row[0], row[2], row[3]),
        (b.id.as_str(), "created", s(&b.path))
    );
}

#[test]
fn list_under_a_named_root_that_does_not_exist_fails() {
    berth_only!("runc 1.1.5 lists nothing; runc 1.2 and later fail");
    let b = Bundle::new();
    let missing = b.dir.join("no-such-root");
    let mut cmd = std::process::Command::new(integration::runtime());
    cmd.args(["--root", s(&missing), "list"]);
    b.output(&mut cmd)
        .assert_failed()
        .assert_mentions("no-such-root");
}

#[test]
fn list_prints_json() {
    let b = Bundle::new();
    b.create().assert_ok();
    let out = b.rt(&["list", "--format", "json"]);
    let list: Value =
        serde_json::from_str(&out.assert_ok().stdout).expect("list -f json prints JSON");
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(
        (&list[0]["id"], &list[0]["status"]),
        (&json!(b.id), &json!("created"))
    );
}

#[test]
fn list_quiet_prints_only_ids() {
    let b = Bundle::new();
    b.create().assert_ok();
    assert_eq!(
        b.rt(&["list", "-q"]).assert_ok().stdout,
        format!("{}\n", b.id)
    );
}

#[test]
fn spec_refuses_to_overwrite_config_json() {
    let b = Bundle::new();
    std::fs::write(b.path.join("config.json"), "{}").unwrap();
    b.rt(&["spec", "--bundle", s(&b.path)])
        .assert_failed()
        .assert_mentions("config.json");
    assert_eq!(
        std::fs::read_to_string(b.path.join("config.json")).unwrap(),
        "{}"
    );
}

/// `spec [flags]` into a new directory: the config and its namespace types.
fn spec_with(b: &Bundle, flags: &[&str]) -> (Value, Vec<String>) {
    let dir = b.host_dir("spec");
    let mut args = vec!["spec"];
    args.extend_from_slice(flags);
    args.extend(["-b", s(&dir)]);
    b.rt(&args).assert_ok();
    let spec: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    let types = spec["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap().to_owned())
        .collect();
    (spec, types)
}

#[test]
fn spec_has_a_cgroup_namespace_on_cgroup_v2_only() {
    let (_, types) = spec_with(&Bundle::new(), &[]);
    assert_eq!(types.iter().any(|t| t == "cgroup"), unified(), "{types:?}");
}

#[test]
fn spec_rootless_adds_a_user_namespace() {
    let b = Bundle::new();
    let (spec, types) = spec_with(&b, &["--rootless"]);
    let types: Vec<&str> = types.iter().map(String::as_str).collect();
    assert!(
        types.contains(&"user") && !types.contains(&"network"),
        "{types:?}"
    );
    // SAFETY: getuid has no preconditions.
    assert_eq!(
        spec["linux"]["uidMappings"][0]["hostID"],
        json!(unsafe { libc::getuid() })
    );
}

#[test]
fn flags_accept_the_equals_form() {
    let b = Bundle::new();
    let root = format!("--root={}", s(&b.state_root));
    let bundle = format!("--bundle={}", s(&b.path));
    let pid_file = b.dir.join("init.pid");
    let mut cmd = std::process::Command::new(integration::runtime());
    cmd.args([
        &root,
        "--log-format=json",
        "create",
        &bundle,
        &format!("--pid-file={}", s(&pid_file)),
        &b.id,
    ]);
    b.output(&mut cmd).assert_ok();
    assert_eq!(
        std::fs::read_to_string(pid_file).unwrap().trim(),
        b.state_json()["pid"].to_string()
    );
}

#[test]
fn bundle_has_a_short_flag() {
    let b = Bundle::new();
    b.rt(&["create", "-b", s(&b.path), &b.id]).assert_ok();
    assert_eq!(b.state_json()["bundle"], s(&b.path));
}

#[test]
fn global_flags_are_accepted() {
    let b = Bundle::new();
    // A --root given must exist for `list` (runc 1.2 and later agree).
    std::fs::create_dir_all(&b.state_root).unwrap();
    b.rt(&[
        "--debug",
        "--log-format",
        "text",
        "--systemd-cgroup",
        "list",
        "-q",
    ])
    .assert_ok();
}

#[test]
fn no_pivot_runs_the_container_in_its_rootfs() {
    let mut b = Bundle::new();
    b.sh("cat /etc/hostname");
    let out = b.rt(&["run", "--no-pivot", "--bundle", s(&b.path), &b.id]);
    assert_eq!(
        out.assert_ok().stdout,
        "berth\n",
        "the busybox rootfs's /etc/hostname"
    );
    b.assert_no_leftovers();
}

/// Whether the container sees a session keyring named after it (`_ses.ID`,
/// as runc names the one it makes) when run with `flags`.
fn has_own_session_keyring(flags: &[&str]) -> bool {
    let mut b = Bundle::new();
    b.edit(|c| {
        c["linux"]["maskedPaths"]
            .as_array_mut()
            .unwrap()
            .retain(|p| p != "/proc/keys")
    });
    b.sh("cat /proc/keys");
    let mut args = vec!["run"];
    args.extend_from_slice(flags);
    args.extend_from_slice(&["--bundle", s(&b.path), &b.id]);
    let keys = b.rt(&args).assert_ok().stdout.clone();
    keys.contains(&format!(" _ses.{}: ", b.id))
}

#[test]
fn each_container_gets_a_new_session_keyring() {
    assert!(has_own_session_keyring(&[]));
}

#[test]
fn no_new_keyring_keeps_the_callers_keyring() {
    assert!(!has_own_session_keyring(&["--no-new-keyring"]));
}

#[test]
fn preserve_fds_passes_extra_descriptors() {
    let mut b = Bundle::new();
    let file = b.dir.join("fd3");
    std::fs::write(&file, "via fd 3\n").unwrap();
    let fd3 = std::fs::File::open(&file).unwrap();
    b.sh("cat <&3");
    let mut cmd = b.command();
    cmd.args(["run", "--preserve-fds", "1", "--bundle", s(&b.path), &b.id]);
    integration::give_fd3(&mut cmd, &fd3);
    assert_eq!(b.output(&mut cmd).assert_ok().stdout, "via fd 3\n");
}

#[test]
fn a_created_init_holds_no_fd_its_caller_did_not_pass() {
    let b = Bundle::new();
    let file = b.dir.join("callers-own");
    std::fs::write(&file, "not for the container\n").unwrap();
    let fd3 = std::fs::File::open(&file).unwrap();
    let mut cmd = b.command();
    cmd.args(["create", "--bundle", s(&b.path), &b.id]);
    integration::give_fd3(&mut cmd, &fd3);
    b.output(&mut cmd).assert_ok();
    let pid = b.state_json()["pid"].as_u64().expect("state has a pid");
    let held: Vec<_> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .collect();
    assert!(!held.contains(&file), "init holds {held:?}");
    b.delete(&["--force"]).assert_ok();
}

#[test]
fn socket_activation_fds_come_first_and_are_announced() {
    let mut b = Bundle::new();
    std::fs::write(b.dir.join("socket"), "activation\n").unwrap();
    std::fs::write(b.dir.join("extra"), "preserved\n").unwrap();
    b.sh("cat <&3; cat <&4; cat <&5 2>/dev/null || echo 5 closed; echo $LISTEN_FDS $LISTEN_PID");
    let mut cmd =
        b.command_via_sh("export LISTEN_PID=$$ LISTEN_FDS=1; exec \"$@\" 3<socket 4<extra 5<extra");
    cmd.args(["run", "--preserve-fds", "1", "--bundle", s(&b.path), &b.id]);
    let out = b.output(&mut cmd);
    assert_eq!(
        out.assert_ok().stdout,
        "activation\npreserved\n5 closed\n1 1\n"
    );
}

#[test]
fn socket_activation_fds_of_another_process_are_not_passed() {
    let mut b = Bundle::new();
    std::fs::write(b.dir.join("socket"), "activation\n").unwrap();
    b.sh("cat <&3 2>/dev/null || echo closed; echo ${LISTEN_FDS:-unset}");
    let mut cmd = b.command_via_sh("export LISTEN_PID=1 LISTEN_FDS=1; exec \"$@\" 3<socket");
    cmd.args(["run", "--bundle", s(&b.path), &b.id]);
    assert_eq!(b.output(&mut cmd).assert_ok().stdout, "closed\nunset\n");
}

#[test]
fn features_describes_the_runtime() {
    let b = Bundle::new();
    let out = b.rt(&["features"]);
    let doc: Value = serde_json::from_str(&out.assert_ok().stdout).expect("features prints JSON");
    assert!(
        doc["ociVersionMax"]
            .as_str()
            .is_some_and(|v| v.starts_with("1.")),
        "{doc}"
    );
    let namespaces = doc["linux"]["namespaces"]
        .as_array()
        .expect("linux.namespaces");
    assert!(namespaces.contains(&json!("pid")), "{doc}");
    assert_eq!(doc["linux"]["cgroup"]["v1"], true, "{doc}");
    assert_eq!(doc["linux"]["cgroup"]["systemd"], true, "{doc}");
    assert!(doc["hooks"]
        .as_array()
        .unwrap()
        .contains(&json!("poststart")));
    assert_eq!(doc["linux"]["seccomp"]["enabled"], true, "{doc}");
    let ops = doc["linux"]["seccomp"]["operators"]
        .as_array()
        .expect("seccomp operators");
    assert!(ops.contains(&json!("SCMP_CMP_MASKED_EQ")), "{doc}");
}

#[test]
fn features_lists_idmapped_mounts_and_no_unsafe_annotation() {
    berth_only!("runc 1.1.5 has no idmapped mounts");
    let b = Bundle::new();
    let out = b.rt(&["features"]);
    let doc: Value = serde_json::from_str(&out.assert_ok().stdout).expect("features prints JSON");
    assert_eq!(
        doc["linux"]["mountExtensions"]["idmap"]["enabled"], true,
        "{doc}"
    );
    let options = doc["mountOptions"].as_array().expect("mountOptions");
    assert!(
        options.contains(&json!("idmap")) && options.contains(&json!("ridmap")),
        "{doc}"
    );
    let unsafe_annotations = &doc["potentiallyUnsafeConfigAnnotations"];
    assert_eq!(unsafe_annotations, &json!([]), "{doc}");
}

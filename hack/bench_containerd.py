"""A private containerd 1.6 for hack/bench.py: its own config, root, state
and socket in one directory, a busybox image imported from a rootfs made by
hack/mkrootfs, and a cleanup that leaves nothing behind even after a failed
measure (tasks, containers, shims, their sockets, mounts, cgroups, the
directory). Use it as a context manager.

A keeper process (this file run as a script) starts containerd and cleans up
once its stdin, a pipe only the bench holds, reaches end-of-file: when the
bench is done, and also when it is killed outright.
"""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

# Ours alone: the runtimes' state roots and the cgroups are named after it.
NAMESPACE = "berth-bench"
IMAGE = "berth.bench/busybox:latest"


class Shim:
    """One path from containerd to a runtime: the `ctr run --runtime` type and
    the directory where that shim's runtime keeps state for our namespace."""

    def __init__(self, key, name, binary, runtime_type, runtime):
        self.key, self.name, self.binary = key, name, binary
        self.runtime_type = runtime_type
        # Each shim defaults its runtime's --root to this (shim/src/runtime_cli.rs
        # for ours; the Rust runc shim uses the Go one's).
        self.state = Path("/run/containerd") / runtime / NAMESPACE
        self.path = binary

    def locate(self, path_first):
        """Where containerd, with `path_first` before its PATH, finds it."""
        self.path = shutil.which(self.binary, path=f"{path_first}:{os.environ['PATH']}")


# Ours drives the berth found beside its binary; the stock ones, runc on
# PATH. containerd finds `io.containerd.runc.v2-rs` as containerd-shim-runc-v2-rs,
# the Rust shim's binary (crate containerd-runc-shim).
BERTH_SHIM = Shim("berth", "berth shim", "containerd-shim-berth-v2", "io.containerd.berth.v2", "berth")
RUNC_SHIM = Shim("runc", "runc shim", "containerd-shim-runc-v2", "io.containerd.runc.v2", "runc")
RUST_SHIM = Shim("runc-rs", "Rust runc shim", "containerd-shim-runc-v2-rs",
                 "io.containerd.runc.v2-rs", "runc")


class Client:
    """ctr against the containerd whose directory is `directory`."""

    def __init__(self, directory):
        self.dir = Path(directory)
        self.address = self.dir / "containerd.sock"

    def ctr(self, *args):
        """The argv of `ctr` against this containerd, in our namespace."""
        return ["ctr", "--address", str(self.address), "-n", NAMESPACE, *args]

    def ctr_output(self, *args):
        """ctr's stdout, or None when it fails."""
        out = subprocess.run(self.ctr(*args), capture_output=True, text=True)
        return out.stdout if out.returncode == 0 else None

    def shim_pids(self):
        """The shims serving this containerd: their command line names its
        socket (the host may run other containerds and their shims)."""
        return [pid for pid, argv in command_lines()
                if "containerd-shim" in argv[0] and f"-address\0{self.address}" in "\0".join(argv)]

    def remove_all(self):
        """Force-deletes every task (killing it) and container of our namespace."""
        tasks = (self.ctr_output("tasks", "ls", "-q") or "").split()
        if tasks:
            subprocess.run(self.ctr("tasks", "delete", "--force", *tasks),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        containers = (self.ctr_output("containers", "ls", "-q") or "").split()
        if containers:
            subprocess.run(self.ctr("containers", "delete", *containers),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Containerd(Client):
    """The bench's side: starts the keeper, waits for containerd, runs ctr."""

    def __init__(self, directory, path_first):
        super().__init__(directory)
        # A session of its own: a ^C at the terminal must not stop
        # containerd or the keeper before the keeper has cleaned up.
        self.keeper = subprocess.Popen([sys.executable, __file__, str(self.dir), path_first],
                                       stdin=subprocess.PIPE, start_new_session=True)

    def __enter__(self):
        try:
            self._wait_listening()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_):
        self.stop()

    def stop(self):
        """Has the keeper clean up, and waits until it has."""
        self.keeper.stdin.close()
        self.keeper.wait()

    def _wait_listening(self):
        deadline = time.monotonic() + 20
        while self.ctr_output("version") is None:
            if self.keeper.poll() is not None or time.monotonic() > deadline:
                log = self.dir / "containerd.log"
                raise RuntimeError("containerd did not start:\n" +
                                   (log.read_text()[-2000:] if log.exists() else ""))
            time.sleep(0.05)

    def run(self, shim, cid, flags, args):
        """The argv of `ctr run FLAGS` of IMAGE as `cid` through `shim`."""
        # IO fifos in our directory: a detached ctr leaves them behind.
        return self.ctr("run", *flags, "--fifo-dir", str(self.dir / "fifo"),
                        "--runtime", shim.runtime_type, IMAGE, cid, *args)

    def import_image(self, rootfs):
        """Imports `rootfs` as IMAGE: a docker archive of one layer, as
        integration/src/containerd.rs makes it."""
        layer = self.dir / "layer.tar"
        with tarfile.open(layer, "w") as tar:
            tar.add(rootfs, arcname=".")
        digest = hashlib.sha256(layer.read_bytes()).hexdigest()
        config = {
            "architecture": "amd64", "os": "linux",
            "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": [f"sha256:{digest}"]},
        }
        manifest = [{"Config": "config.json", "RepoTags": [IMAGE], "Layers": ["layer.tar"]}]
        archive = self.dir / "busybox.tar"
        with tarfile.open(archive, "w") as tar:
            for name, data in (("manifest.json", manifest), ("config.json", config)):
                (self.dir / name).write_text(json.dumps(data))
                tar.add(self.dir / name, arcname=name)
            tar.add(layer, arcname="layer.tar")
        subprocess.run(self.ctr("images", "import", str(archive)), check=True,
                       stdout=subprocess.DEVNULL)


def keep(directory, path_first):
    """The keeper: containerd in `directory`, with `path_first` (directories)
    before its PATH so that it finds the shims there, until stdin ends."""
    ctd = Client(directory)
    ctd.dir.mkdir(parents=True)
    (ctd.dir / "config.toml").write_text(
        "version = 2\n"
        f'root = "{ctd.dir / "root"}"\n'
        f'state = "{ctd.dir / "state"}"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{ctd.address}"\n')
    env = dict(os.environ, PATH=f"{path_first}:{os.environ['PATH']}")
    with open(ctd.dir / "containerd.log", "wb") as log:
        proc = subprocess.Popen(["containerd", "--config", str(ctd.dir / "config.toml")],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    sys.stdin.buffer.read()
    clean(ctd, proc)


def clean(ctd, proc):
    """Leaves nothing behind, whatever state the measures left."""
    if proc.poll() is None:
        ctd.remove_all()
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    kill_shims(ctd)
    unmount_below(ctd.dir)
    subprocess.run(["rm", "-rf", "--one-file-system", str(ctd.dir)], check=True)
    for shim in (BERTH_SHIM, RUNC_SHIM, RUST_SHIM):
        subprocess.run(["rm", "-rf", str(shim.state)], check=True)
    # ctr puts a container in /NAMESPACE/ID: in each v1 hierarchy, or at
    # the top of a pure v2 host's.
    root = Path("/sys/fs/cgroup")
    for cgroup in [*root.glob(NAMESPACE), *root.glob(f"*/{NAMESPACE}")]:
        remove_cgroup(cgroup)


def kill_shims(ctd):
    """Shims that outlived containerd (a failed delete), their containers,
    and the sockets they listened on (named in each bundle)."""
    shims = ctd.shim_pids()
    for pid in shims + children_of(shims):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for address in (ctd.dir / "state").glob("io.containerd.runtime.v2.task/*/*/address"):
        Path(address.read_text().removeprefix("unix://")).unlink(missing_ok=True)


def command_lines():
    """(pid, argv) of every process (but kernel threads)."""
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            argv = cmdline.read_bytes().decode(errors="replace").split("\0")
        except OSError:  # gone
            continue
        if argv[0]:
            yield int(cmdline.parent.name), argv


def running(path):
    """The pids of the processes that run the file at `path` (and so share
    its pages)."""
    want = os.stat(path)
    pids = []
    for pid, _ in command_lines():
        try:
            exe = os.stat(f"/proc/{pid}/exe")
        except OSError:  # gone
            continue
        if (exe.st_dev, exe.st_ino) == (want.st_dev, want.st_ino):
            pids.append(pid)
    return pids


def children_of(pids):
    """The processes whose parent is one of `pids`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The parent's pid follows the parenthesized command name.
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid in pids:
            found.append(int(stat.parent.name))
    return found


def remove_cgroup(cgroup):
    """Removes `cgroup` and those below it, deepest first: the runtimes
    remove a container's cgroup but not their parent named after the
    namespace, and a container killed in the middle of its start keeps its."""
    for below, _, _ in os.walk(cgroup, topdown=False):
        try:
            os.rmdir(below)
        except OSError:  # a process still in it
            pass


def unmount_below(directory):
    """Unmounts, deepest first, what is mounted under `directory` (the
    containers' rootfs overlays, in this private mount namespace)."""
    prefix = f"{directory}/"
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for point in reversed(points):
        if point.startswith(prefix):
            subprocess.run(["umount", "-l", point], stderr=subprocess.DEVNULL)


def smaps_rollup_kib(pid):
    """{"Rss": kB, "Pss": kB, ...} of one process."""
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":", 1)
        fields[key] = int(value.split()[0])
    return fields


if __name__ == "__main__":
    keep(sys.argv[1], sys.argv[2])

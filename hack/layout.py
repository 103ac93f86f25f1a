#!/usr/bin/env python3
"""Writes runtime/berth.order and shim/shim.order, the functions berth and
its shim run on their way to a container, for the linker to put first
(runtime/link_order.rs).

Why: the kernel maps 64 KiB of a binary around each page it faults in, so
a run's RSS is every 64 KiB window that holds anything it ran; scattered
across the text, the hot code drags nearly all of it in. Packed together
it is one contiguous run of pages.

How: berth runs from a small ext4 on a loop device with readahead off, so
a page of the binary is in the page cache only when one of berth's
processes touched it (mincore tells). The binary profiled starts every
function on a page of its own, so a cached page names the function that
ran. Each scenario (run, and the verbs containerd calls one by one)
starts from an empty cache. The file lists the functions most scenarios
share first, then each scenario's own, in the order of the scenarios.

Called by hack/layout in a private mount namespace, with the directory of
those binaries (a release build keeps its symbol table: strip =
"debuginfo"). The shim is profiled under a containerd of hack/bench's kind.
The names carry cargo's hashes: after a change of the toolchain, the
dependencies or the release profile, run hack/layout again (hack/bench
reports how many of the names the binary still has).
"""

import ctypes
import shutil
import subprocess
import sys
from pathlib import Path

from bench import make_bundle
from bench_containerd import BERTH_SHIM, Containerd

ROOT = Path(__file__).resolve().parent.parent
WORK = Path("/tmp/berth-layout")
PAGE = 4096
LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.mmap.restype = ctypes.c_void_p
LIBC.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
LIBC.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]


def sh(*argv, **kw):
    return subprocess.run([str(a) for a in argv], check=True, **kw)


def cached_pages(path):
    """The pages of `path` in the page cache."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        addr = LIBC.mmap(None, size, 1, 1, f.fileno(), 0)  # PROT_READ, MAP_SHARED
        pages = (size + PAGE - 1) // PAGE
        vec = (ctypes.c_ubyte * pages)()
        if LIBC.mincore(addr, size, vec) != 0:
            raise OSError(ctypes.get_errno(), "mincore")
    return {i for i in range(pages) if vec[i] & 1}


def functions(binary):
    """(file offset, size, name) of each function in the binary's symbol table."""
    segments = []
    for line in sh("readelf", "-lW", binary, capture_output=True, text=True).stdout.splitlines():
        p = line.split()
        if p and p[0] == "LOAD":
            segments.append((int(p[2], 16), int(p[1], 16), int(p[5], 16)))
    out = []
    for line in sh("nm", "-S", "--defined-only", binary, capture_output=True,
                   text=True).stdout.splitlines():
        p = line.split()
        if len(p) != 4 or p[2] not in "tT" or int(p[1], 16) == 0:
            continue
        vaddr = int(p[0], 16)
        for va, off, size in segments:
            if va <= vaddr < va + size:
                out.append((vaddr - va + off, int(p[1], 16), p[3]))
    if not out:
        sys.exit(f"hack/layout: {binary} has no symbol table (strip = \"debuginfo\" keeps it)")
    return out


def cli_scenarios(berth, b, sleeper):
    """(name, setup, measured): the measured calls start from a cold cache."""
    rt = [berth, "--root", WORK / "state"]
    return [
        ("run", [], [[*rt, "run", "--bundle", b, "l1"]]),
        ("create", [], [[*rt, "create", "--bundle", sleeper, "l2"]]),
        ("start", [], [[*rt, "start", "l2"]]),
        ("state", [], [[*rt, "state", "l2"]]),
        ("exec", [], [[*rt, "exec", "l2", "/bin/true"]]),
        ("kill", [], [[*rt, "kill", "l2", "KILL"]]),
        ("delete", [["sleep", "0.2"]], [[*rt, "delete", "l2"]]),
    ]


def shim_scenarios(ctd):
    """A task's life through the shim, as containerd and the kubelet ask
    for it: one scenario, since one shim process serves it all."""
    return [("containerd", [], [
        ctd.run(BERTH_SHIM, "l3", ["-d"], ["sleep", "1000"]),
        ctd.ctr("tasks", "exec", "--exec-id", "e1", "l3", "/bin/true"),
        ctd.ctr("tasks", "metrics", "l3"),
        ctd.ctr("tasks", "pause", "l3"),
        ctd.ctr("tasks", "resume", "l3"),
        ctd.ctr("tasks", "kill", "-s", "KILL", "l3"),
        ["sleep", "0.5"],
        ctd.ctr("tasks", "delete", "l3"),
        ctd.ctr("containers", "delete", "l3"),
    ])]


def profile(binary, scenarios):
    """The functions of `binary` each scenario ran: name -> scenario indexes."""
    funcs = functions(binary)
    used = {}
    for i, (name, setup, measured) in enumerate(scenarios):
        for argv in setup:
            sh(*argv)
        sh("sync")
        Path("/proc/sys/vm/drop_caches").write_text("3")
        for argv in measured:
            sh(*argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        pages = cached_pages(binary)
        hot = [f for f in funcs if any(p in pages for p in
                                       range(f[0] // PAGE, (f[0] + f[1] - 1) // PAGE + 1))]
        print(f"    {binary.name} {name}: {len(hot)} functions", flush=True)
        for _, _, fn in hot:
            used.setdefault(fn, []).append(i)
    return funcs, used


def write_order(path, funcs, used):
    """Those shared by most scenarios first, then each one's own."""
    order = sorted(used, key=lambda fn: (-len(used[fn]), used[fn][0]))
    path.write_text("".join(fn + "\n" for fn in order))
    size = sum(f[1] for f in funcs if f[2] in used)
    print(f"==> {path.relative_to(ROOT)}: {len(order)} functions, {size // 1024} KiB of "
          f"{sum(f[1] for f in funcs) // 1024} KiB")


def loop_filesystem():
    """An ext4 on a loop device with readahead off, mounted at WORK/fs."""
    (WORK / "mnt").mkdir(parents=True)
    sh("mount", "-t", "tmpfs", "tmpfs", WORK / "mnt")
    img = WORK / "mnt/fs.img"
    sh("truncate", "-s", "128M", img)
    sh("mkfs.ext4", "-q", "-F", img)
    (WORK / "fs").mkdir()
    sh("mount", "-o", "loop", img, WORK / "fs")
    device = sh("findmnt", "-no", "SOURCE", WORK / "fs", capture_output=True,
                text=True).stdout.strip()
    sh("blockdev", "--setra", "0", device)
    return WORK / "fs"


def main():
    built = Path(sys.argv[1])
    shutil.rmtree(WORK, ignore_errors=True)
    fs = loop_filesystem()
    (WORK / "state").mkdir()
    # The shim runs the berth beside it.
    berth, shim = fs / "berth", fs / BERTH_SHIM.binary
    shutil.copy2(built / "berth", berth)
    shutil.copy2(built / BERTH_SHIM.binary, shim)
    b, sleeper = make_bundle(berth, WORK)
    write_order(ROOT / "runtime/berth.order", *profile(berth, cli_scenarios(berth, b, sleeper)))
    BERTH_SHIM.locate(str(fs))
    with Containerd(WORK / "containerd", str(fs)) as ctd:
        ctd.import_image(b / "rootfs")
        try:
            write_order(ROOT / "shim/shim.order", *profile(shim, shim_scenarios(ctd)))
        finally:
            ctd.remove_all()
    sh("umount", "-l", fs)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""berth against runc, crun and youki on one busybox bundle, and berth's
shim against containerd's Go and Rust runc shims under a private
containerd, in one run.

Called by hack/bench inside a private mount namespace (crun 1.8 needs the
hybrid cgroup2 mount hidden; every runtime and shim runs under that same
condition). Rounds alternate the runtimes (or shims), and rotate their
order, so drift hits all of them alike. Writes a markdown report to the
path given as the first argument and prints it.
"""

import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_containerd import (BERTH_SHIM, RUNC_SHIM, RUST_SHIM, Containerd, running,
                              smaps_rollup_kib)

RUNS = int(os.environ.get("BENCH_RUNS", "40"))
ROOT = Path(__file__).resolve().parent.parent
WORK = Path(os.environ.get("BENCH_DIR", "/tmp/berth-bench"))
# The runtimes' --root: a tmpfs, as /run is on a standard system (on this
# machine /run is on the disk, where berth's fsync of each state write
# costs what runc and crun, which do not sync, never pay).
STATE = WORK / "state"
# A command that has not ended after this many seconds hangs.
HANG = 60
# The ratio columns: each berth build against each peer.
BUILDS = ["berth", "berth musl"]
PEERS = ["runc", "crun", "youki"]
# Rounds of the shim memory measures: each starts up to 50 containers.
MEMORY_RUNS = 3
SLEEPERS = (1, 50)


class Runtime:
    def __init__(self, name, path):
        self.name, self.path = name, path
        self.key = name.replace(" ", "-")
        self.root = STATE / f"root-{self.key}"

    def argv(self, *args):
        return [self.path, "--root", str(self.root), *args]

    def version(self):
        return version_of([self.path, "--version"])


def version_of(argv, lines=1):
    """The first `lines` non-blank lines of what `argv` prints, on one line."""
    out = subprocess.run(argv, capture_output=True, text=True).stdout
    return " ".join([l.strip() for l in out.splitlines() if l.strip()][:lines]) or "?"


def timed(argv):
    """Wall seconds of one command."""
    # A file, not a pipe: a detached container keeps its stderr open.
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        code = subprocess.call(argv, stdout=subprocess.DEVNULL, stderr=err)
        elapsed = time.perf_counter() - start
        if code != 0:
            err.seek(0)
            sys.exit(f"bench: {' '.join(argv)} failed ({code}): {err.read().decode()}")
    return elapsed


def peak_rss(argv):
    """Peak RSS (MiB) of one command and the processes it reaped, by GNU
    time: a child forked from Python would count Python's pages too."""
    with tempfile.NamedTemporaryFile() as out:
        timed(["/usr/bin/time", "-f", "%M", "-o", out.name, *argv])
        return int(Path(out.name).read_text().split()[-1]) / 1024


def quiet(argv):
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_bundle(berth, work=WORK):
    """A busybox bundle running /bin/true, and one running a sleep."""
    bundle = work / "bundle"
    subprocess.run(["hack/mkrootfs", str(bundle / "rootfs")], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([berth, "spec", "--bundle", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    # crun 1.8 refuses the newer versions; every runtime reads this one.
    config["ociVersion"] = "1.0.2"
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/true"]
    (bundle / "config.json").write_text(json.dumps(config))
    sleeper = work / "sleeper"
    sleeper.mkdir()
    config["root"]["path"] = str(bundle / "rootfs")
    config["process"]["args"] = ["sleep", "100000"]
    (sleeper / "config.json").write_text(json.dumps(config))
    return bundle, sleeper


def wait_stopped(rt, cid):
    """Untimed: delete wants /bin/true to have ended."""
    while True:
        out = subprocess.run(rt.argv("state", cid), capture_output=True, text=True).stdout
        if json.loads(out or "{}").get("status") != "running":
            return
        time.sleep(0.001)


def rounds(runtimes, runs, measure):
    """{name: [samples]}: `measure(rt, i)` per runtime per round."""
    out = {rt.name: [] for rt in runtimes}
    for i in range(runs):
        shift = i % len(runtimes)
        for rt in runtimes[shift:] + runtimes[:shift]:
            out[rt.name].append(measure(rt, i))
    return out


def bench(runtimes, bundle, sleeper):
    b = ["--bundle", str(bundle)]
    results = {}

    def run(rt, i):
        return timed(rt.argv("run", *b, f"run-{i}")) * 1e3

    results["run /bin/true (ms)"] = rounds(runtimes, RUNS, run)

    def separate(rt, i):
        cid = f"csd-{i}"
        t = timed(rt.argv("create", *b, cid)) + timed(rt.argv("start", cid))
        wait_stopped(rt, cid)
        return (t + timed(rt.argv("delete", cid))) * 1e3

    results["create + start + delete (ms)"] = rounds(runtimes, RUNS, separate)

    def rss_run(rt, i):
        return peak_rss(rt.argv("run", *b, f"rss-run-{i}"))

    def rss_create(rt, i):
        cid = f"rss-create-{i}"
        rss = peak_rss(rt.argv("create", *b, cid))
        quiet(rt.argv("delete", "--force", cid))
        return rss

    results["run: peak RSS (MiB)"] = rounds(runtimes, 10, rss_run)
    results["create: peak RSS (MiB)"] = rounds(runtimes, 10, rss_create)

    def execute(rt, i):
        return timed(rt.argv("exec", f"sleeper-{rt.key}", "/bin/true")) * 1e3

    # The sleepers go even when a measure fails: their state is on a tmpfs
    # that goes with the bench.
    try:
        for rt in runtimes:
            timed(rt.argv("run", "--detach", "--bundle", str(sleeper), f"sleeper-{rt.key}"))
        results["exec /bin/true (ms)"] = rounds(runtimes, RUNS, execute)
    finally:
        for rt in runtimes:
            quiet(rt.argv("delete", "--force", f"sleeper-{rt.key}"))

    def sequence(rt, i):
        start = time.perf_counter()
        for n in range(100):
            timed(rt.argv("run", *b, f"seq-{i}-{n}"))
        return time.perf_counter() - start

    results["100 runs in sequence (s)"] = rounds(runtimes, 3, sequence)

    def parallel(rt, i):
        """None when a run hangs: youki 0.7.0's `run` here, now and then,
        waits for a SIGCHLD it has missed, beside its zombie child."""
        start = time.perf_counter()
        procs = [subprocess.Popen(rt.argv("run", *b, f"par-{i}-{n}"),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for n in range(20)]
        try:
            codes = [p.wait(timeout=HANG) for p in procs]
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
                p.wait()
            for n in range(20):
                quiet(rt.argv("delete", "--force", f"par-{i}-{n}"))
            return None
        if any(codes):
            sys.exit(f"bench: {rt.name}: a parallel run failed: {codes}")
        return time.perf_counter() - start

    results["20 runs in parallel (s)"] = rounds(runtimes, 5, parallel)
    return results


def bench_shims(ctd, shims):
    """`ctr run --rm` end to end, and the shims' memory per container; and
    {"processes"|"others": {count: {shim: {counts seen}}}}, shim processes
    of ours and of other containerds, for the report."""
    rm = ["--rm"]
    for shim in shims:  # untimed: pages each shim in, and fails early if it cannot run
        timed(ctd.run(shim, f"warm-{shim.key}", rm, ["/bin/true"]))

    def run_rm(shim, i):
        return timed(ctd.run(shim, f"rm-{shim.key}-{i}", rm, ["/bin/true"])) * 1e3

    results = {"ctr run --rm /bin/true (ms)": rounds(shims, RUNS, run_rm)}
    counts = {}
    for count in SLEEPERS:
        samples = rounds(shims, MEMORY_RUNS, lambda shim, i: shim_memory(ctd, shim, count, i))
        for field in ("Rss", "Pss"):
            results[f"shim {field.upper()} per container, {count} running (MiB)"] = {
                name: [s[field] for s in by_round] for name, by_round in samples.items()}
        for kind in ("processes", "others"):
            counts.setdefault(kind, {})[count] = {
                name: {s[kind] for s in by_round} for name, by_round in samples.items()}
    return results, counts


def shim_memory(ctd, shim, count, i):
    """RSS and PSS (MiB) of all shim processes, divided by the containers,
    with `count` sleepers running through `shim`; and how many shims."""
    ids = [f"mem-{shim.key}-{count}-{i}-{n}" for n in range(count)]
    for cid in ids:
        timed(ctd.run(shim, cid, ["-d"], ["sleep", "100000"]))
    # Let the last shim finish answering Start before its pages are counted.
    time.sleep(1)
    pids = ctd.shim_pids()
    # Other containerds' shims of the same binary share its pages: PSS.
    others = len(set(running(shim.path)) - set(pids))
    kib = {"Rss": 0, "Pss": 0}
    for pid in pids:
        rollup = smaps_rollup_kib(pid)
        for field in kib:
            kib[field] += rollup[field]
    ctd.remove_all()
    wait_no_shims(ctd)
    return {**{f: v / 1024 / count for f, v in kib.items()},
            "processes": len(pids), "others": others}


def wait_no_shims(ctd):
    """Untimed: a shim still exiting would count in the next measure."""
    deadline = time.monotonic() + 10
    while ctd.shim_pids():
        if time.monotonic() > deadline:
            sys.exit(f"bench: shims still running after delete: {ctd.shim_pids()}")
        time.sleep(0.01)


def measured(samples):
    return [s for s in samples if s is not None]


def cell(samples):
    done = measured(samples)
    if not done:
        return f"all {len(samples)} hung"
    hung = f", {len(samples) - len(done)} of {len(samples)} hung" if len(done) < len(samples) else ""
    return f"{statistics.median(done):.2f} ({min(done):.2f}–{max(done):.2f}{hung})"


def table(results, names, baselines, builds):
    """Markdown rows: a column per name, then the ratios of medians of each
    of `builds` (berth's, those measured) to each baseline measured."""
    pairs = [(b, p) for b in builds if b in names for p in baselines if p in names]
    lines = ["| measure | " + " | ".join(names) + " | " +
             " | ".join(f"{b}/{p}" for b, p in pairs) + " |",
             "| --- |" + " --- |" * (len(names) + len(pairs))]
    for measure, by_name in results.items():
        med = {k: statistics.median(measured(v) or [float("nan")]) for k, v in by_name.items()}
        ratios = [f"{med[b] / med[p]:.2f}" for b, p in pairs]
        lines.append(f"| {measure} | " + " | ".join(cell(by_name[n]) for n in names) +
                     " | " + " | ".join(ratios) + " |")
    return lines


def counted(by_count):
    """`1 running: berth shim 1, runc shim 1; 50 running: ...`, every count
    seen over the rounds."""
    def counts(seen):
        return "/".join(map(str, sorted(seen)))
    return "; ".join(f"{count} running: " +
                     ", ".join(f"{name} {counts(seen)}" for name, seen in by_shim.items())
                     for count, by_shim in by_count.items())


def layout(berth):
    """How many of the functions runtime/berth.order names the build has:
    the names carry cargo's hashes, and a stale file orders nothing."""
    names = set((ROOT / "runtime/berth.order").read_text().split())
    symbols = subprocess.run(["nm", "--defined-only", berth.path], capture_output=True,
                             text=True).stdout.split()
    found = len(names.intersection(symbols))
    return f"{found} of its {len(names)} functions are in the build" + (
        "" if found == len(names) else " (run hack/layout)")


def report(runtimes, results, shims, shim_results, counts, load_before):
    cpu = next((l.split(":", 1)[1].strip() for l in
                Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?")
    mem = Path("/proc/meminfo").read_text().split()[1]
    lines = [
        "# Benchmarks",
        "",
        "Written by `hack/bench`; numbers are medians, with min–max, over rounds",
        "that alternate the runtimes (rotating their order). Every runtime ran in",
        "a private mount namespace with an empty tmpfs over `/sys/fs/cgroup/unified`,",
        "the condition crun 1.8 needs on this hybrid-cgroup host, with its `--root`",
        "on a tmpfs, as `/run` is on a standard system.",
        "",
        f"- Machine: {cpu}, {os.cpu_count()} CPUs, {int(mem) // 1024} MiB, "
        f"kernel {platform.release()}",
        # The host is shared: its load says how noisy the times are.
        f"- Load average (1 min) at the start and the end: {load_before:.2f}, "
        f"{os.getloadavg()[0]:.2f}",
        *[f"- {rt.name}: `{rt.version()}` ({rt.path})" for rt in runtimes],
        "- berth and its shim: `cargo build --release` (static-pie, glibc); berth musl: "
        "the same with `--target x86_64-unknown-linux-musl` (static)",
        f"- berth's hot functions first (`runtime/berth.order`, by `hack/layout`): {layout(runtimes[0])}",
        *[f"- not measured: {m}" for m in os.environ.get("BENCH_MISSING", "").split(";") if m],
        f"- Rounds: {RUNS} (run, create + start + delete, exec), 10 (peak RSS, by GNU "
        "time), 3 (100 in sequence), 5 (20 in parallel)",
        "",
        *table(results, [rt.name for rt in runtimes], PEERS, builds=BUILDS),
        "",
        "## Under containerd",
        "",
        "A containerd of the bench's own (config, root, state and socket in a",
        "temporary directory, CRI disabled), in the same mount namespace, with a",
        "busybox image made from `hack/mkrootfs`. `ctr run --rm` is timed end to",
        "end, ctr included. For the memory rows, `ctr run -d` starts 1 or 50",
        "`sleep` containers through one shim; the RSS and PSS (from",
        "`/proc/PID/smaps_rollup`) of all that containerd's shim processes are",
        "summed and divided by the number of containers. PSS divides a page among",
        "every process that maps it: the runc shim runs from a copy of",
        "`/usr/bin/containerd-shim-runc-v2`, so that the stock shims of other",
        "containerds on this shared host do not lower its PSS (counted below).",
        "",
        f"- containerd: `{version_of(['containerd', '--version'])}`",
        *[f"- {shim.name}: `{version_of([shim.path, '-v'], 2)}` ({shim.path}), "
          f"`{shim.runtime_type}`" for shim in shims],
        f"- Rounds: {RUNS} (ctr run --rm), {MEMORY_RUNS} (memory)",
        f"- Shim processes counted: {counted(counts['processes'])}",
        "- Other processes of the same shim file on the host meanwhile: "
        f"{counted(counts['others'])}",
        "",
        *table(shim_results, [shim.name for shim in shims], [shim.name for shim in shims[1:]],
               builds=[shims[0].name]),
    ]
    return "\n".join(lines) + "\n"


def main():
    out_path, berth = Path(sys.argv[1]), sys.argv[2]
    # A plain kill must run the cleanups too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench: terminated"))
    shutil.rmtree(WORK, ignore_errors=True)
    STATE.mkdir(parents=True)
    # In hack/bench's private mount namespace: it goes with the bench.
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "berth-bench", str(STATE)],
                   check=True)
    try:
        text = bench_all(berth)
    finally:
        subprocess.run(["umount", "-l", str(STATE)])
        shutil.rmtree(WORK, ignore_errors=True)
    out_path.write_text(text)
    print(text)


def shim_path(berth):
    """The directories to put first on containerd's PATH: the release build
    (containerd-shim-berth-v2 beside berth), and a copy of the stock runc
    shim. The copy shares its pages only with this bench's runc shims, as
    our build does with ours: the other containerds on a shared host run
    many stock shims, which would lower its PSS."""
    private = WORK / "shims"
    private.mkdir()
    shutil.copy2(shutil.which(RUNC_SHIM.binary), private)
    return ":".join([str(Path(berth).resolve().parent), str(private),
                     *filter(None, [os.environ.get("BENCH_RUST_SHIM_DIR")])])


def bench_all(berth):
    """The report of every measure: the runtimes, then the shims."""
    load_before = os.getloadavg()[0]
    runtimes = [Runtime("berth", berth),
                *[Runtime("berth musl", p) for p in filter(None, [os.environ.get("BENCH_MUSL")])],
                Runtime("runc", shutil.which("runc")),
                Runtime("crun", shutil.which("crun")),
                *[Runtime("youki", p) for p in filter(None, [os.environ.get("BENCH_YOUKI")])]]
    bundle, sleeper = make_bundle(berth)
    print(f"==> {RUNS} rounds of each measure, alternating {', '.join(r.name for r in runtimes)}",
          flush=True)
    results = bench(runtimes, bundle, sleeper)
    path_first = shim_path(berth)
    shims = [BERTH_SHIM, RUNC_SHIM, *([RUST_SHIM] if os.environ.get("BENCH_RUST_SHIM_DIR") else [])]
    for shim in shims:
        shim.locate(path_first)
    print(f"==> under containerd, alternating {', '.join(s.name for s in shims)}", flush=True)
    with Containerd(WORK / "containerd", path_first) as ctd:
        ctd.import_image(bundle / "rootfs")
        shim_results, counts = bench_shims(ctd, shims)
    return report(runtimes, results, shims, shim_results, counts, load_before)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""berth against runc and crun on one busybox bundle, in one run.

Called by hack/bench inside a private mount namespace (crun 1.8 needs the
hybrid cgroup2 mount hidden; every runtime runs under that same condition).
Rounds alternate the runtimes, and rotate their order, so drift hits all of
them alike. Writes a markdown report to the path given as the first
argument and prints it.
"""

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = int(os.environ.get("BENCH_RUNS", "40"))
WORK = Path(os.environ.get("BENCH_DIR", "/tmp/berth-bench"))


class Runtime:
    def __init__(self, name, path):
        self.name, self.path = name, path
        self.root = WORK / f"root-{name}"

    def argv(self, *args):
        return [self.path, "--root", str(self.root), *args]

    def version(self):
        out = subprocess.run([self.path, "--version"], capture_output=True, text=True)
        return out.stdout.splitlines()[0] if out.stdout else "?"


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


def make_bundle(berth):
    bundle = WORK / "bundle"
    subprocess.run(["hack/mkrootfs", str(bundle / "rootfs")], check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run([berth, "spec", "--bundle", str(bundle)], check=True)
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/true"]
    (bundle / "config.json").write_text(json.dumps(config))
    sleeper = WORK / "sleeper"
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

    for rt in runtimes:
        timed(rt.argv("run", "--detach", "--bundle", str(sleeper), "sleeper"))

    def execute(rt, i):
        return timed(rt.argv("exec", "sleeper", "/bin/true")) * 1e3

    results["exec /bin/true (ms)"] = rounds(runtimes, RUNS, execute)
    for rt in runtimes:
        quiet(rt.argv("delete", "--force", "sleeper"))

    def sequence(rt, i):
        start = time.perf_counter()
        for n in range(100):
            timed(rt.argv("run", *b, f"seq-{i}-{n}"))
        return time.perf_counter() - start

    results["100 runs in sequence (s)"] = rounds(runtimes, 3, sequence)

    def parallel(rt, i):
        start = time.perf_counter()
        procs = [subprocess.Popen(rt.argv("run", *b, f"par-{i}-{n}"),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for n in range(20)]
        codes = [p.wait() for p in procs]
        if any(codes):
            sys.exit(f"bench: {rt.name}: a parallel run failed: {codes}")
        return time.perf_counter() - start

    results["20 runs in parallel (s)"] = rounds(runtimes, 5, parallel)
    return results


def cell(samples):
    return f"{statistics.median(samples):.2f} ({min(samples):.2f}–{max(samples):.2f})"


def report(runtimes, results):
    cpu = next((l.split(":", 1)[1].strip() for l in
                Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?")
    mem = Path("/proc/meminfo").read_text().split()[1]
    names = [rt.name for rt in runtimes]
    lines = [
        "# Benchmarks",
        "",
        "Written by `hack/bench`; numbers are medians, with min–max, over rounds",
        "that alternate the runtimes (rotating their order). Every runtime ran in",
        "a private mount namespace with an empty tmpfs over `/sys/fs/cgroup/unified`,",
        "the condition crun 1.8 needs on this hybrid-cgroup host.",
        "",
        f"- Machine: {cpu}, {os.cpu_count()} CPUs, {int(mem) // 1024} MiB, "
        f"kernel {platform.release()}",
        *[f"- {rt.name}: `{rt.version()}` ({rt.path})" for rt in runtimes],
        f"- Rounds: {RUNS} (run, create + start + delete, exec), 10 (peak RSS, by GNU "
        "time), 3 (100 in sequence), 5 (20 in parallel)",
        "",
        "| measure | " + " | ".join(names) + " | berth/runc | berth/crun |",
        "| --- |" + " --- |" * (len(names) + 2),
    ]
    for measure, by_rt in results.items():
        med = {k: statistics.median(v) for k, v in by_rt.items()}
        ratios = [f"{med['berth'] / med[o]:.2f}" for o in ("runc", "crun")]
        lines.append(f"| {measure} | " + " | ".join(cell(by_rt[n]) for n in names) +
                     " | " + " | ".join(ratios) + " |")
    return "\n".join(lines) + "\n"


def main():
    out_path, berth = Path(sys.argv[1]), sys.argv[2]
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    runtimes = [Runtime("berth", berth),
                Runtime("runc", shutil.which("runc")),
                Runtime("crun", shutil.which("crun"))]
    bundle, sleeper = make_bundle(berth)
    print(f"==> {RUNS} rounds of each measure, alternating {', '.join(r.name for r in runtimes)}",
          flush=True)
    text = report(runtimes, bench(runtimes, bundle, sleeper))
    out_path.write_text(text)
    print(text)
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()

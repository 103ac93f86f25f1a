//! Stats as containerd wants them: cgroups v1 or v2 `Metrics`, made from
//! what `RT events --stats ID` prints (runc's JSON shape, which berth keeps),
//! so any runc-compatible runtime works and the shim reads no cgroup itself.

use containerd_shim::protos::cgroups::metrics as v1;
use containerd_shim::protos::cgroups_v2::metrics as v2;
use protobuf::{MessageDyn, MessageField};
use serde_json::Value;

/// The Metrics for the host's cgroup version, from `events --stats` output.
pub fn metrics(stats: &Value, unified: bool) -> Box<dyn MessageDyn> {
    let data = &stats["data"];
    match unified {
        true => Box::new(metrics_v2(data)),
        false => Box::new(metrics_v1(data)),
    }
}

/// Whether the host is a pure cgroup v2 host.
pub fn unified_host() -> bool {
    std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists()
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn some<T>(t: T) -> MessageField<T> {
    MessageField::some(t)
}

fn metrics_v1(d: &Value) -> v1::Metrics {
    let (cpu, mem, raw) = (&d["cpu"], &d["memory"], &d["memory"]["raw"]);
    let entry = |e: &Value| {
        some(v1::MemoryEntry {
            limit: n(&e["limit"]),
            usage: n(&e["usage"]),
            max: n(&e["max"]),
            failcnt: n(&e["failcnt"]),
            ..Default::default()
        })
    };
    let r = |k: &str| n(&raw[k]);
    v1::Metrics {
        pids: some(v1::PidsStat {
            current: n(&d["pids"]["current"]),
            limit: n(&d["pids"]["limit"]),
            ..Default::default()
        }),
        cpu: some(v1::CPUStat {
            usage: some(v1::CPUUsage {
                total: n(&cpu["usage"]["total"]),
                kernel: n(&cpu["usage"]["kernel"]),
                user: n(&cpu["usage"]["user"]),
                per_cpu: numbers(&cpu["usage"]["percpu"]),
                ..Default::default()
            }),
            throttling: some(v1::Throttle {
                periods: n(&cpu["throttling"]["periods"]),
                throttled_periods: n(&cpu["throttling"]["throttledPeriods"]),
                throttled_time: n(&cpu["throttling"]["throttledTime"]),
                ..Default::default()
            }),
            ..Default::default()
        }),
        memory: some(v1::MemoryStat {
            cache: r("cache"),
            rss: r("rss"),
            rss_huge: r("rss_huge"),
            mapped_file: r("mapped_file"),
            dirty: r("dirty"),
            writeback: r("writeback"),
            pg_pg_in: r("pgpgin"),
            pg_pg_out: r("pgpgout"),
            pg_fault: r("pgfault"),
            pg_maj_fault: r("pgmajfault"),
            inactive_anon: r("inactive_anon"),
            active_anon: r("active_anon"),
            inactive_file: r("inactive_file"),
            active_file: r("active_file"),
            unevictable: r("unevictable"),
            hierarchical_memory_limit: r("hierarchical_memory_limit"),
            hierarchical_swap_limit: r("hierarchical_memsw_limit"),
            total_cache: r("total_cache"),
            total_rss: r("total_rss"),
            total_rss_huge: r("total_rss_huge"),
            total_mapped_file: r("total_mapped_file"),
            total_dirty: r("total_dirty"),
            total_writeback: r("total_writeback"),
            total_pg_pg_in: r("total_pgpgin"),
            total_pg_pg_out: r("total_pgpgout"),
            total_pg_fault: r("total_pgfault"),
            total_pg_maj_fault: r("total_pgmajfault"),
            total_inactive_anon: r("total_inactive_anon"),
            total_active_anon: r("total_active_anon"),
            total_inactive_file: r("total_inactive_file"),
            total_active_file: r("total_active_file"),
            total_unevictable: r("total_unevictable"),
            usage: entry(&mem["usage"]),
            swap: entry(&mem["swap"]),
            kernel: entry(&mem["kernel"]),
            kernel_tcp: entry(&mem["kernelTCP"]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn metrics_v2(d: &Value) -> v2::Metrics {
    let (cpu, mem, raw) = (&d["cpu"], &d["memory"], &d["memory"]["raw"]);
    let r = |k: &str| n(&raw[k]);
    let usec = |v: &Value| n(v) / 1000;
    v2::Metrics {
        pids: some(v2::PidsStat {
            current: n(&d["pids"]["current"]),
            limit: n(&d["pids"]["limit"]),
            ..Default::default()
        }),
        cpu: some(v2::CPUStat {
            usage_usec: usec(&cpu["usage"]["total"]),
            user_usec: usec(&cpu["usage"]["user"]),
            system_usec: usec(&cpu["usage"]["kernel"]),
            nr_periods: n(&cpu["throttling"]["periods"]),
            nr_throttled: n(&cpu["throttling"]["throttledPeriods"]),
            throttled_usec: usec(&cpu["throttling"]["throttledTime"]),
            ..Default::default()
        }),
        memory: some(v2::MemoryStat {
            anon: r("anon"),
            file: r("file"),
            kernel_stack: r("kernel_stack"),
            slab: r("slab"),
            sock: r("sock"),
            shmem: r("shmem"),
            file_mapped: r("file_mapped"),
            file_dirty: r("file_dirty"),
            file_writeback: r("file_writeback"),
            inactive_anon: r("inactive_anon"),
            active_anon: r("active_anon"),
            inactive_file: r("inactive_file"),
            active_file: r("active_file"),
            unevictable: r("unevictable"),
            pgfault: r("pgfault"),
            pgmajfault: r("pgmajfault"),
            usage: n(&mem["usage"]["usage"]),
            usage_limit: n(&mem["usage"]["limit"]),
            max_usage: n(&mem["usage"]["max"]),
            swap_usage: n(&mem["swap"]["usage"]),
            swap_limit: n(&mem["swap"]["limit"]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn numbers(v: &Value) -> Vec<u64> {
    v.as_array()
        .map_or_else(Vec::new, |a| a.iter().map(n).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({"type": "stats", "id": "c", "data": {
            "cpu": {"usage": {"total": 5000, "percpu": [2000, 3000], "kernel": 1000, "user": 4000},
                    "throttling": {"periods": 7, "throttledPeriods": 2, "throttledTime": 9000}},
            "memory": {"usage": {"limit": 67108864, "usage": 1048576, "max": 2097152, "failcnt": 1},
                       "raw": {"cache": 4096, "total_rss": 8192, "anon": 12288}},
            "pids": {"current": 2, "limit": 100}}})
    }

    #[test]
    fn v1_metrics_carry_memory_cpu_and_pids() {
        let m = metrics_v1(&sample()["data"]);
        assert_eq!(m.memory.usage.limit, 67108864);
        assert_eq!(m.memory.usage.usage, 1048576);
        assert_eq!((m.memory.cache, m.memory.total_rss), (4096, 8192));
        assert_eq!(m.cpu.usage.per_cpu, [2000, 3000]);
        assert_eq!(m.cpu.throttling.throttled_periods, 2);
        assert_eq!((m.pids.current, m.pids.limit), (2, 100));
    }

    #[test]
    fn v2_metrics_count_microseconds() {
        let m = metrics_v2(&sample()["data"]);
        assert_eq!(
            (m.cpu.usage_usec, m.cpu.user_usec, m.cpu.system_usec),
            (5, 4, 1)
        );
        assert_eq!(m.cpu.throttled_usec, 9);
        assert_eq!(
            (m.memory.usage, m.memory.usage_limit, m.memory.anon),
            (1048576, 67108864, 12288)
        );
        assert_eq!(m.pids.current, 2);
    }
}

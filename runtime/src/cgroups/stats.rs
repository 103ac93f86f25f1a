//! Resource usage of a cgroup, in the JSON shape `runc events --stats`
//! prints (cpu, memory, pids, blkio, hugetlb).

use super::{Cgroup, Version};
use serde_json::{json, Map, Value};
use std::path::Path;

fn read(dir: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(file)).ok()
}

fn num(dir: &Path, file: &str) -> u64 {
    read(dir, file)
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// `max` reads as u64::MAX, as runc reports an unlimited value.
fn limit(dir: &Path, file: &str) -> u64 {
    match read(dir, file).as_deref().map(str::trim) {
        Some("max") => u64::MAX,
        Some(v) => v.parse().unwrap_or(0),
        None => 0,
    }
}

/// "key value" lines (memory.stat, cpu.stat, ...).
fn flat(dir: &Path, file: &str) -> Map<String, Value> {
    read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), Value::from(v.trim().parse::<u64>().ok()?)))
        })
        .collect()
}

fn get(m: &Map<String, Value>, k: &str) -> u64 {
    m.get(k).and_then(Value::as_u64).unwrap_or(0)
}

impl Cgroup {
    pub fn stats(&self) -> Value {
        let data = match self.version {
            Version::V1 => self.stats_v1(),
            Version::V2 => self.stats_v2(),
        };
        Value::Object(data)
    }

    fn stats_v1(&self) -> Map<String, Value> {
        let mut out = Map::new();
        if let Ok(d) = self.dir_of("cpuacct") {
            let percpu: Vec<u64> = read(&d, "cpuacct.usage_percpu")
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|v| v.parse().ok())
                .collect();
            let ticks = flat(&d, "cpuacct.stat");
            // cpuacct.stat counts USER_HZ ticks (100 a second).
            let ns = |k| get(&ticks, k) * 10_000_000;
            let thr = self
                .dir_of("cpu")
                .map(|c| flat(&c, "cpu.stat"))
                .unwrap_or_default();
            out.insert(
                "cpu".into(),
                json!({
                    "usage": {"total": num(&d, "cpuacct.usage"), "percpu": percpu,
                              "kernel": ns("system"), "user": ns("user")},
                    "throttling": {"periods": get(&thr, "nr_periods"),
                                   "throttledPeriods": get(&thr, "nr_throttled"),
                                   "throttledTime": get(&thr, "throttled_time")},
                }),
            );
        }
        if let Ok(d) = self.dir_of("memory") {
            let entry = |p: &str| {
                json!({"limit": limit(&d, &format!("{p}limit_in_bytes")),
                       "usage": num(&d, &format!("{p}usage_in_bytes")),
                       "max": num(&d, &format!("{p}max_usage_in_bytes")),
                       "failcnt": num(&d, &format!("{p}failcnt"))})
            };
            let raw = flat(&d, "memory.stat");
            out.insert(
                "memory".into(),
                json!({
                    "cache": get(&raw, "total_cache"),
                    "usage": entry("memory."), "swap": entry("memory.memsw."),
                    "kernel": entry("memory.kmem."), "kernelTCP": entry("memory.kmem.tcp."),
                    "raw": raw,
                }),
            );
        }
        self.insert_pids(&mut out);
        if let Ok(d) = self.dir_of("blkio") {
            out.insert(
                "blkio".into(),
                json!({
                    "ioServiceBytesRecursive": blkio_v1(&d, "blkio.throttle.io_service_bytes_recursive"),
                    "ioServicedRecursive": blkio_v1(&d, "blkio.throttle.io_serviced_recursive"),
                }),
            );
        }
        self.insert_hugetlb(&mut out, "limit_in_bytes", "usage_in_bytes");
        out
    }

    fn stats_v2(&self) -> Map<String, Value> {
        let mut out = Map::new();
        let Some(d) = self.dirs().into_iter().next() else {
            return out;
        };
        let cpu = flat(&d, "cpu.stat");
        out.insert(
            "cpu".into(),
            json!({
                "usage": {"total": get(&cpu, "usage_usec") * 1000, "percpu": [],
                          "kernel": get(&cpu, "system_usec") * 1000, "user": get(&cpu, "user_usec") * 1000},
                "throttling": {"periods": get(&cpu, "nr_periods"),
                               "throttledPeriods": get(&cpu, "nr_throttled"),
                               "throttledTime": get(&cpu, "throttled_usec") * 1000},
            }),
        );
        let raw = flat(&d, "memory.stat");
        let events = flat(&d, "memory.events");
        out.insert(
            "memory".into(),
            json!({
                "cache": get(&raw, "file"),
                "usage": {"limit": limit(&d, "memory.max"), "usage": num(&d, "memory.current"),
                          "max": num(&d, "memory.peak"), "failcnt": get(&events, "max")},
                "swap": {"limit": limit(&d, "memory.swap.max"), "usage": num(&d, "memory.swap.current"),
                         "max": num(&d, "memory.swap.peak"), "failcnt": 0},
                "raw": raw,
            }),
        );
        self.insert_pids(&mut out);
        out.insert("blkio".into(), blkio_v2(&d));
        self.insert_hugetlb(&mut out, "max", "current");
        out
    }

    fn insert_pids(&self, out: &mut Map<String, Value>) {
        if let Ok(d) = self.dir_of("pids") {
            let lim = limit(&d, "pids.max");
            out.insert(
                "pids".into(),
                json!({"current": num(&d, "pids.current"), "limit": if lim == u64::MAX { 0 } else { lim }}),
            );
        }
    }

    fn insert_hugetlb(&self, out: &mut Map<String, Value>, max_file: &str, usage_file: &str) {
        let Ok(d) = self.dir_of("hugetlb") else {
            return;
        };
        let mut sizes = Map::new();
        for size in hugepage_sizes() {
            let f = |x: &str| format!("hugetlb.{size}.{x}");
            sizes.insert(
                size.clone(),
                json!({"usage": num(&d, &f(usage_file)), "max": limit(&d, &f(max_file)),
                       "failcnt": num(&d, &f("failcnt"))}),
            );
        }
        out.insert("hugetlb".into(), Value::Object(sizes));
    }
}

/// Page sizes as cgroup files name them: "2MB", "1GB".
fn hugepage_sizes() -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/sys/kernel/mm/hugepages") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let kb: u64 = name
                .strip_prefix("hugepages-")?
                .strip_suffix("kB")?
                .parse()
                .ok()?;
            Some(match kb {
                k if k >= 1 << 20 => format!("{}GB", k >> 20),
                k if k >= 1 << 10 => format!("{}MB", k >> 10),
                k => format!("{k}KB"),
            })
        })
        .collect()
}

/// v1 blkio lines: "8:0 Read 4096".
fn blkio_v1(dir: &Path, file: &str) -> Value {
    let entries: Vec<Value> = read(dir, file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (dev, op, value) = (f.next()?, f.next()?, f.next()?.parse::<u64>().ok()?);
            let (major, minor) = dev.split_once(':')?;
            Some(
                json!({"major": major.parse::<u64>().ok()?, "minor": minor.parse::<u64>().ok()?,
                        "op": op, "value": value}),
            )
        })
        .collect();
    Value::Array(entries)
}

/// v2 io.stat lines: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...".
fn blkio_v2(dir: &Path) -> Value {
    let mut bytes = Vec::new();
    let mut ios = Vec::new();
    for line in read(dir, "io.stat").unwrap_or_default().lines() {
        let mut f = line.split_whitespace();
        let Some((major, minor)) = f.next().and_then(|d| d.split_once(':')) else {
            continue;
        };
        for kv in f {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let (list, op) = match k {
                "rbytes" => (&mut bytes, "Read"),
                "wbytes" => (&mut bytes, "Write"),
                "rios" => (&mut ios, "Read"),
                "wios" => (&mut ios, "Write"),
                _ => continue,
            };
            list.push(json!({"major": major.parse::<u64>().unwrap_or(0), "minor": minor.parse::<u64>().unwrap_or(0),
                             "op": op, "value": v.parse::<u64>().unwrap_or(0)}));
        }
    }
    json!({"ioServiceBytesRecursive": bytes, "ioServicedRecursive": ios})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_blkio_and_io_stat() {
        let dir = std::env::temp_dir().join(format!("berth-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("b"), "8:0 Read 4096\n8:0 Write 0\nTotal 4096\n").unwrap();
        std::fs::write(
            dir.join("io.stat"),
            "8:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0\n",
        )
        .unwrap();
        let v1 = blkio_v1(&dir, "b");
        assert_eq!(
            v1[0],
            json!({"major": 8, "minor": 0, "op": "Read", "value": 4096})
        );
        assert_eq!(v1.as_array().unwrap().len(), 2);
        let v2 = blkio_v2(&dir);
        assert_eq!(v2["ioServiceBytesRecursive"][1]["value"], 20);
        assert_eq!(v2["ioServicedRecursive"][0]["op"], "Read");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

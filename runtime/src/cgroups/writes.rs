//! Resources as the files a cgroup driver writes: a pure translation, so
//! every conversion and refusal is unit-tested without a kernel.

use super::convert::{blkio_weight_to_io, limit_or_max, shares_to_weight, swap_v2};
use super::CgroupError;
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxDeviceType, LinuxResources};

/// One value for one file of one controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The v1 controller (hierarchy) the file belongs to; on v2 the
    /// controller the file needs enabled.
    pub controller: &'static str,
    pub file: String,
    pub value: String,
    /// What to do where the kernel lacks `file`.
    pub missing: Missing,
}

/// Where the kernel lacks a file: some exist only with a kernel option
/// (swap accounting) or I/O scheduler (CFQ's blkio.weight, BFQ's
/// weights), and runc then writes another or nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// Write anyway, and fail naming the file.
    Fail,
    /// Leave it out.
    Skip,
    /// Write this instead.
    Instead(Box<Write>),
}

fn w(controller: &'static str, file: impl Into<String>, value: impl ToString) -> Write {
    Write {
        controller,
        file: file.into(),
        value: value.to_string(),
        missing: Missing::Fail,
    }
}

impl Write {
    fn or_skip(self) -> Write {
        Write {
            missing: Missing::Skip,
            ..self
        }
    }

    fn or_instead(self, other: Write) -> Write {
        Write {
            missing: Missing::Instead(Box::new(other)),
            ..self
        }
    }
}

fn bad(field: &str, why: impl Into<String>) -> CgroupError {
    CgroupError::Invalid(format!("linux.resources.{field}: {}", why.into()))
}

/// The default device rules runc 1.1 adds after a spec's own: mknod of
/// anything, the devices every container gets, the pty devices and tun.
const DEFAULT_ALLOW: [&str; 11] = [
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:8 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:5 rwm",
    "c 1:9 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
];

/// A device rule in the kernel's "type major:minor access" form. The
/// access is normalised as runc does, to the letters r, w and m it names,
/// in that order: a stray letter or a repeat would have the kernel (or
/// the v2 filter) refuse it. No access at all means all three; `None`
/// for one naming no letter of the three, which grants or takes nothing.
pub fn device_rule(d: &LinuxDeviceCgroup) -> Option<String> {
    let typ = match d.typ() {
        None | Some(LinuxDeviceType::A) => 'a',
        Some(LinuxDeviceType::B) => 'b',
        Some(LinuxDeviceType::P) => 'p',
        Some(_) => 'c',
    };
    let num = |n: Option<i64>| {
        n.filter(|n| *n >= 0)
            .map_or("*".to_string(), |n| n.to_string())
    };
    let asked = d
        .access()
        .as_deref()
        .filter(|a| !a.is_empty())
        .unwrap_or("rwm");
    let access: String = "rwm".chars().filter(|c| asked.contains(*c)).collect();
    if access.is_empty() {
        return None;
    }
    if typ == 'a' {
        return Some(format!("a *:* {access}"));
    }
    Some(format!(
        "{typ} {}:{} {access}",
        num(d.major()),
        num(d.minor())
    ))
}

/// The device rules of a container in order: (allow?, rule): deny-all,
/// the spec's, then runc's defaults.
pub fn device_rules(r: Option<&LinuxResources>) -> Vec<(bool, String)> {
    let mut rules = vec![(false, "a *:* rwm".to_string())];
    let spec_rules = r.and_then(|r| r.devices().as_ref()).into_iter().flatten();
    rules.extend(spec_rules.filter_map(|d| Some((d.allow(), device_rule(d)?))));
    rules.extend(DEFAULT_ALLOW.iter().map(|s| (true, s.to_string())));
    rules
}

/// `r` without the limits set to 0: clients write 0 for a limit they leave
/// alone (Docker's `update` sends every field), and runc reads 0 as unset.
fn zeros_unset(r: &LinuxResources) -> LinuxResources {
    fn set<T: Default + PartialEq>(v: Option<T>) -> Option<T> {
        v.filter(|v| *v != T::default())
    }
    let mut r = r.clone();
    if let Some(m) = r.memory_mut() {
        let was = *m;
        m.set_limit(set(was.limit()))
            .set_reservation(set(was.reservation()))
            .set_swap(set(was.swap()))
            .set_kernel(set(was.kernel()))
            .set_kernel_tcp(set(was.kernel_tcp()));
    }
    if let Some(c) = r.cpu_mut() {
        let (shares, quota, period) = (c.shares(), c.quota(), c.period());
        let (rt_runtime, rt_period) = (c.realtime_runtime(), c.realtime_period());
        c.set_shares(set(shares))
            .set_quota(set(quota))
            .set_period(set(period))
            .set_realtime_runtime(set(rt_runtime))
            .set_realtime_period(set(rt_period));
    }
    if r.pids().is_some_and(|p| p.limit() == 0) {
        r.set_pids(None);
    }
    r
}

/// cgroup v1 files for `r` (devices excepted: see `device_rules`).
pub fn v1(r: &LinuxResources) -> Result<Vec<Write>, CgroupError> {
    let r = &zeros_unset(r);
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        if let (Some(l), Some(s)) = (m.limit(), m.swap()) {
            if l > 0 && s > 0 && s < l {
                return Err(bad(
                    "memory.swap",
                    format!("{s} is less than memory.limit {l}; swap counts memory plus swap"),
                ));
            }
        }
        if let Some(l) = m.limit() {
            out.push(w("memory", "memory.limit_in_bytes", l));
        }
        match (m.limit(), m.swap()) {
            (_, Some(s)) => out.push(w("memory", "memory.memsw.limit_in_bytes", s)),
            // No memory limit means no memory+swap limit either (runc's
            // reading), where the kernel accounts swap at all.
            (Some(-1), None) => out.push(w("memory", "memory.memsw.limit_in_bytes", -1).or_skip()),
            _ => {}
        }
        if let Some(v) = m.reservation() {
            out.push(w("memory", "memory.soft_limit_in_bytes", v));
        }
        if let Some(v) = m.kernel() {
            out.push(w("memory", "memory.kmem.limit_in_bytes", v));
        }
        if let Some(v) = m.kernel_tcp() {
            out.push(w("memory", "memory.kmem.tcp.limit_in_bytes", v));
        }
        if let Some(v) = m.swappiness() {
            if v > 100 {
                return Err(bad("memory.swappiness", format!("{v} is not in 0..=100")));
            }
            out.push(w("memory", "memory.swappiness", v));
        }
        if m.disable_oom_killer() == Some(true) {
            out.push(w("memory", "memory.oom_control", 1));
        }
        if let Some(h) = m.use_hierarchy() {
            out.push(w("memory", "memory.use_hierarchy", u8::from(h)));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(v) = c.shares() {
            out.push(w("cpu", "cpu.shares", v));
        }
        if let Some(v) = c.period() {
            out.push(w("cpu", "cpu.cfs_period_us", v));
        }
        if let Some(v) = c.quota() {
            out.push(w("cpu", "cpu.cfs_quota_us", v));
        }
        if let Some(v) = c.burst() {
            out.push(w("cpu", "cpu.cfs_burst_us", v));
        }
        if let Some(v) = c.realtime_period() {
            out.push(w("cpu", "cpu.rt_period_us", v));
        }
        if let Some(v) = c.realtime_runtime() {
            out.push(w("cpu", "cpu.rt_runtime_us", v));
        }
        if let Some(v) = c.idle() {
            out.push(w("cpu", "cpu.idle", idle(v)?));
        }
        cpuset(&mut out, c.cpus(), c.mems());
    }
    if let Some(p) = r.pids() {
        out.push(w("pids", "pids.max", pids(p.limit())));
    }
    if let Some(b) = r.block_io() {
        // blkio.weight is CFQ's, gone with the legacy block layer: where
        // it is missing BFQ's files take the same values.
        let weight = |file: &str, value: String| {
            w("blkio", format!("blkio.{file}"), &value).or_instead(w(
                "blkio",
                format!("blkio.bfq.{file}"),
                value,
            ))
        };
        if let Some(v) = b.weight().filter(|v| *v != 0) {
            out.push(weight("weight", blkio_weight(v)?.to_string()));
        }
        if let Some(v) = b.leaf_weight().filter(|v| *v != 0) {
            out.push(w("blkio", "blkio.leaf_weight", blkio_weight(v)?));
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(v) = d.weight() {
                let value = format!("{}:{} {v}", d.major(), d.minor());
                out.push(weight("weight_device", value));
            }
            if let Some(v) = d.leaf_weight() {
                out.push(w(
                    "blkio",
                    "blkio.leaf_weight_device",
                    format!("{}:{} {v}", d.major(), d.minor()),
                ));
            }
        }
        let throttles = [
            (
                "blkio.throttle.read_bps_device",
                b.throttle_read_bps_device(),
            ),
            (
                "blkio.throttle.write_bps_device",
                b.throttle_write_bps_device(),
            ),
            (
                "blkio.throttle.read_iops_device",
                b.throttle_read_iops_device(),
            ),
            (
                "blkio.throttle.write_iops_device",
                b.throttle_write_iops_device(),
            ),
        ];
        for (file, list) in throttles {
            for d in list.iter().flatten() {
                out.push(w(
                    "blkio",
                    file,
                    format!("{}:{} {}", d.major(), d.minor(), d.rate()),
                ));
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        out.push(w(
            "hugetlb",
            format!("hugetlb.{}.limit_in_bytes", h.page_size()),
            h.limit(),
        ));
    }
    if let Some(n) = r.network() {
        if let Some(id) = n.class_id() {
            out.push(w("net_cls", "net_cls.classid", id));
        }
        for p in n.priorities().iter().flatten() {
            out.push(w(
                "net_prio",
                "net_prio.ifpriomap",
                format!("{} {}", p.name(), p.priority()),
            ));
        }
    }
    rdma(&mut out, r);
    if r.unified().as_ref().is_some_and(|u| !u.is_empty()) {
        return Err(bad("unified", "cannot use unified on cgroup v1"));
    }
    Ok(out)
}

/// cgroup v2 files for `r` (devices are an eBPF program, not a file).
pub fn v2(r: &LinuxResources) -> Result<Vec<Write>, CgroupError> {
    let r = &zeros_unset(r);
    let mut out = Vec::new();
    if let Some(m) = r.memory() {
        if let Some(l) = m.limit() {
            out.push(w("memory", "memory.max", limit_or_max(l)));
        }
        if let Some(s) = m.swap() {
            out.push(w(
                "memory",
                "memory.swap.max",
                swap_v2(m.limit(), s).map_err(|why| bad("memory.swap", why.to_string()))?,
            ));
        }
        if let Some(v) = m.reservation() {
            out.push(w("memory", "memory.low", limit_or_max(v)));
        }
    }
    if let Some(c) = r.cpu() {
        if let Some(v) = c.shares().map(shares_to_weight).filter(|w| *w > 0) {
            out.push(w("cpu", "cpu.weight", v));
        }
        if c.quota().is_some() || c.period().is_some() {
            let quota = c
                .quota()
                .filter(|q| *q > 0)
                .map_or("max".to_string(), |q| q.to_string());
            // Without a period the kernel keeps the current one.
            let period = c.period().map(|p| format!(" {p}")).unwrap_or_default();
            out.push(w("cpu", "cpu.max", format!("{quota}{period}")));
        }
        if let Some(v) = c.burst() {
            out.push(w("cpu", "cpu.max.burst", v));
        }
        if let Some(v) = c.idle() {
            out.push(w("cpu", "cpu.idle", idle(v)?));
        }
        if c.realtime_period().is_some() || c.realtime_runtime().is_some() {
            return Err(bad(
                "cpu.realtimeRuntime",
                "real-time scheduling limits need cgroup v1",
            ));
        }
        cpuset(&mut out, c.cpus(), c.mems());
    }
    if let Some(p) = r.pids() {
        out.push(w("pids", "pids.max", pids(p.limit())));
    }
    if let Some(b) = r.block_io() {
        // BFQ's io.bfq.weight takes blkio's scale as it is, as runc
        // prefers it; without BFQ, io.weight (io.cost) on its own scale.
        // A plain number is BFQ's default weight, io.weight's needs a key.
        let weight = |device: Option<String>, v: u16| {
            let (bfq, io) = match device {
                Some(d) => (format!("{d} "), format!("{d} ")),
                None => (String::new(), "default ".to_string()),
            };
            w("io", "io.bfq.weight", format!("{bfq}{v}")).or_instead(w(
                "io",
                "io.weight",
                format!("{io}{}", blkio_weight_to_io(v)),
            ))
        };
        if let Some(v) = b.weight().filter(|v| *v != 0) {
            out.push(weight(None, blkio_weight(v)?));
        }
        for d in b.weight_device().iter().flatten() {
            if let Some(v) = d.weight() {
                out.push(weight(Some(format!("{}:{}", d.major(), d.minor())), v));
            }
        }
        let throttles = [
            ("rbps", b.throttle_read_bps_device()),
            ("wbps", b.throttle_write_bps_device()),
            ("riops", b.throttle_read_iops_device()),
            ("wiops", b.throttle_write_iops_device()),
        ];
        for (key, list) in throttles {
            for d in list.iter().flatten() {
                out.push(w(
                    "io",
                    "io.max",
                    format!("{}:{} {key}={}", d.major(), d.minor(), d.rate()),
                ));
            }
        }
    }
    for h in r.hugepage_limits().iter().flatten() {
        out.push(w(
            "hugetlb",
            format!("hugetlb.{}.max", h.page_size()),
            h.limit(),
        ));
    }
    rdma(&mut out, r);
    for (key, value) in r.unified().iter().flatten() {
        if key.contains('/') || key.starts_with('.') || !key.contains('.') {
            return Err(bad(
                &format!("unified[{key:?}]"),
                "is not a cgroup file name",
            ));
        }
        let controller = controller_of(key)
            .ok_or_else(|| bad(&format!("unified[{key:?}]"), "unknown controller"))?;
        out.push(w(controller, key.clone(), value));
    }
    Ok(out)
}

fn controller_of(file: &str) -> Option<&'static str> {
    const KNOWN: [&str; 9] = [
        "cgroup", "cpu", "cpuset", "io", "memory", "pids", "hugetlb", "rdma", "misc",
    ];
    let prefix = file.split('.').next()?;
    KNOWN.iter().copied().find(|k| *k == prefix)
}

fn idle(v: i64) -> Result<i64, CgroupError> {
    match v {
        0 | 1 => Ok(v),
        _ => Err(bad("cpu.idle", format!("{v} is not 0 or 1"))),
    }
}

fn pids(limit: i64) -> String {
    if limit > 0 {
        limit.to_string()
    } else {
        "max".into()
    }
}

fn blkio_weight(v: u16) -> Result<u16, CgroupError> {
    if (10..=1000).contains(&v) {
        Ok(v)
    } else {
        Err(bad("blockIO.weight", format!("{v} is not in 10..=1000")))
    }
}

fn cpuset(out: &mut Vec<Write>, cpus: &Option<String>, mems: &Option<String>) {
    if let Some(v) = cpus.as_deref().filter(|v| !v.is_empty()) {
        out.push(w("cpuset", "cpuset.cpus", v));
    }
    if let Some(v) = mems.as_deref().filter(|v| !v.is_empty()) {
        out.push(w("cpuset", "cpuset.mems", v));
    }
}

fn rdma(out: &mut Vec<Write>, r: &LinuxResources) {
    for (dev, l) in r.rdma().iter().flatten() {
        let mut parts = vec![dev.clone()];
        if let Some(h) = l.hca_handles() {
            parts.push(format!("hca_handle={h}"));
        }
        if let Some(o) = l.hca_objects() {
            parts.push(format!("hca_object={o}"));
        }
        out.push(w("rdma", "rdma.max", parts.join(" ")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(v: serde_json::Value) -> LinuxResources {
        serde_json::from_value(v).unwrap()
    }

    fn find<'a>(ws: &'a [Write], file: &str) -> Vec<&'a str> {
        ws.iter()
            .filter(|w| w.file == file)
            .map(|w| w.value.as_str())
            .collect()
    }

    #[test]
    fn zeros_are_limits_left_alone() {
        // What Docker 20.10's `docker update -m 128m --memory-swap 256m` sends.
        let update = res(serde_json::json!({
            "memory": {"limit": 134217728, "reservation": 0, "swap": 268435456, "kernel": 0},
            "cpu": {"shares": 0, "quota": 0, "period": 0},
            "blockIO": {"weight": 0}
        }));
        let files = |ws: Vec<Write>| ws.into_iter().map(|w| w.file).collect::<Vec<_>>();
        let want = ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"];
        assert_eq!(files(v1(&update).unwrap()), want);
        assert_eq!(
            files(v2(&update).unwrap()),
            ["memory.max", "memory.swap.max"]
        );
    }

    #[test]
    fn v1_memory_cpu_pids() {
        let ws = v1(&res(serde_json::json!({
            "memory": {"limit": 1048576, "swap": 2097152, "reservation": 524288, "swappiness": 10, "disableOOMKiller": true},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0", "idle": 1},
            "pids": {"limit": -1}
        })))
        .unwrap();
        assert_eq!(find(&ws, "memory.limit_in_bytes"), ["1048576"]);
        assert_eq!(find(&ws, "memory.memsw.limit_in_bytes"), ["2097152"]);
        assert_eq!(find(&ws, "memory.soft_limit_in_bytes"), ["524288"]);
        assert_eq!(find(&ws, "memory.oom_control"), ["1"]);
        assert_eq!(find(&ws, "cpu.shares"), ["512"]);
        assert_eq!(find(&ws, "cpu.cfs_quota_us"), ["50000"]);
        assert_eq!(find(&ws, "cpu.idle"), ["1"]);
        assert_eq!(find(&ws, "cpuset.cpus"), ["0"]);
        assert_eq!(find(&ws, "pids.max"), ["max"]);
        let period = ws
            .iter()
            .position(|w| w.file == "cpu.cfs_period_us")
            .unwrap();
        let quota = ws
            .iter()
            .position(|w| w.file == "cpu.cfs_quota_us")
            .unwrap();
        assert!(period < quota, "period first, or a small quota is refused");
    }

    #[test]
    fn v1_blkio_hugetlb_net_rdma() {
        let ws = v1(&res(serde_json::json!({
            "blockIO": {"weight": 500, "weightDevice": [{"major": 8, "minor": 0, "weight": 300}],
                        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
            "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}}
        })))
        .unwrap();
        assert_eq!(find(&ws, "blkio.weight"), ["500"]);
        assert_eq!(find(&ws, "blkio.weight_device"), ["8:0 300"]);
        assert_eq!(find(&ws, "blkio.throttle.read_bps_device"), ["8:0 1000"]);
        assert_eq!(find(&ws, "hugetlb.2MB.limit_in_bytes"), ["4194304"]);
        assert_eq!(find(&ws, "net_cls.classid"), ["1048577"]);
        assert_eq!(find(&ws, "net_prio.ifpriomap"), ["eth0 5"]);
        assert_eq!(
            find(&ws, "rdma.max"),
            ["mlx5_1 hca_handle=3 hca_object=10000"]
        );
    }

    #[test]
    fn zero_means_unset_as_docker_writes_it() {
        let r = res(
            serde_json::json!({"cpu": {"shares": 0}, "blockIO": {"weight": 0, "leafWeight": 0}}),
        );
        assert_eq!(v1(&r).unwrap(), []);
        assert_eq!(v2(&r).unwrap(), []);
    }

    #[test]
    fn impossible_values_are_refused() {
        let e = v1(&res(
            serde_json::json!({"memory": {"limit": 200, "swap": 100}}),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("linux.resources.memory.swap"), "{e}");
        let e = v1(&res(serde_json::json!({"blockIO": {"weight": 5}})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("blockIO.weight"), "{e}");
        let e = v1(&res(serde_json::json!({"cpu": {"idle": 3}})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cpu.idle"), "{e}");
        let e = v1(&res(serde_json::json!({"unified": {"memory.high": "1"}})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot use unified on cgroup v1"), "{e}");
        let e = v2(&res(serde_json::json!({"unified": {"../x": "1"}})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a cgroup file name"), "{e}");
        let e = v2(&res(
            serde_json::json!({"memory": {"limit": 300, "swap": 100}}),
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("memory.swap"), "{e}");
    }

    #[test]
    fn v2_converts_units() {
        let ws = v2(&res(serde_json::json!({
            "memory": {"limit": 1000, "swap": 3000, "reservation": 10},
            "cpu": {"shares": 1024, "quota": 20000, "period": 100000},
            "pids": {"limit": 10},
            "blockIO": {"weight": 1000, "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 7}]},
            "unified": {"memory.high": "5000"}
        })))
        .unwrap();
        assert_eq!(find(&ws, "memory.max"), ["1000"]);
        assert_eq!(find(&ws, "memory.swap.max"), ["2000"]);
        assert_eq!(find(&ws, "memory.low"), ["10"]);
        assert_eq!(find(&ws, "cpu.weight"), ["39"]);
        assert_eq!(find(&ws, "cpu.max"), ["20000 100000"]);
        assert_eq!(find(&ws, "pids.max"), ["10"]);
        assert_eq!(find(&ws, "io.bfq.weight"), ["1000"]);
        assert_eq!(find(&ws, "io.max"), ["8:0 wiops=7"]);
        assert_eq!(find(&ws, "memory.high"), ["5000"]);
    }

    /// (file, value, then the file and value written where it is missing).
    fn with_fallback(w: &Write) -> (&str, &str, &str, &str) {
        let Missing::Instead(other) = &w.missing else {
            panic!("{w:?} has no fallback");
        };
        (&w.file, &w.value, &other.file, &other.value)
    }

    #[test]
    fn weights_fall_back_to_the_file_the_scheduler_has() {
        let r = res(serde_json::json!({"blockIO": {"weight": 300,
            "weightDevice": [{"major": 7, "minor": 1, "weight": 200}]}}));
        let (v1, v2) = (v1(&r).unwrap(), v2(&r).unwrap());
        assert_eq!(
            v1.iter().map(with_fallback).collect::<Vec<_>>(),
            [
                ("blkio.weight", "300", "blkio.bfq.weight", "300"),
                (
                    "blkio.weight_device",
                    "7:1 200",
                    "blkio.bfq.weight_device",
                    "7:1 200"
                ),
            ]
        );
        assert_eq!(
            v2.iter().map(with_fallback).collect::<Vec<_>>(),
            [
                ("io.bfq.weight", "300", "io.weight", "default 2930"),
                ("io.bfq.weight", "7:1 200", "io.weight", "7:1 1920"),
            ]
        );
    }

    #[test]
    fn no_memory_limit_lifts_memsw_where_the_kernel_has_it() {
        let ws = v1(&res(serde_json::json!({"memory": {"limit": -1}}))).unwrap();
        let memsw: Vec<_> = ws
            .iter()
            .filter(|w| w.file == "memory.memsw.limit_in_bytes")
            .collect();
        assert_eq!(memsw.len(), 1);
        assert!(memsw[0].missing == Missing::Skip && memsw[0].value == "-1");
        let ws = v1(&res(serde_json::json!({"memory": {"limit": 100}}))).unwrap();
        assert!(find(&ws, "memory.memsw.limit_in_bytes").is_empty());
    }

    #[test]
    fn a_pids_limit_of_0_is_left_alone() {
        let r = res(serde_json::json!({"pids": {"limit": 0}}));
        assert!(find(&v1(&r).unwrap(), "pids.max").is_empty());
        assert!(find(&v2(&r).unwrap(), "pids.max").is_empty());
    }

    #[test]
    fn v2_quota_alone_keeps_the_period() {
        let ws = v2(&res(serde_json::json!({"cpu": {"quota": -1}}))).unwrap();
        assert_eq!(find(&ws, "cpu.max"), ["max"]);
    }

    #[test]
    fn device_rules_deny_all_first_then_defaults() {
        let r = res(serde_json::json!({"devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 10, "minor": 200, "access": "rwm"},
            {"allow": true, "type": "b", "major": 8, "access": "r"}
        ]}));
        let rules = device_rules(Some(&r));
        assert_eq!(rules[0], (false, "a *:* rwm".into()));
        assert_eq!(rules[1], (false, "a *:* rwm".into()));
        assert_eq!(rules[2], (true, "c 10:200 rwm".into()));
        assert_eq!(rules[3], (true, "b 8:* r".into()));
        assert!(rules.contains(&(true, "c 1:3 rwm".into())));
        assert_eq!(rules.len(), 4 + DEFAULT_ALLOW.len());
    }

    #[test]
    fn device_access_is_normalised() {
        let rule = |access: &str| {
            let d = serde_json::json!({"allow": true, "type": "c", "major": 1, "minor": 2, "access": access});
            device_rule(&serde_json::from_value(d).unwrap())
        };
        assert_eq!(rule("rwa").as_deref(), Some("c 1:2 rw"));
        assert_eq!(rule("mwrrw").as_deref(), Some("c 1:2 rwm"));
        assert_eq!(rule("").as_deref(), Some("c 1:2 rwm"));
        assert_eq!(rule("x"), None);
    }
}

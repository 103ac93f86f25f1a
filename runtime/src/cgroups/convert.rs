//! Unit conversions between cgroup v1 and v2 values, as runc makes them.

/// cpu.shares (2..262144) to cpu.weight (1..10000).
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

/// blkio.weight (10..1000) to io.weight (1..10000).
pub fn blkio_weight_to_io(weight: u16) -> u64 {
    if weight == 0 {
        return 0;
    }
    1 + (u64::from(weight).saturating_sub(10)) * 9999 / 990
}

/// v2's memory.swap.max counts swap alone; the spec's `swap` (like v1's
/// memsw) counts memory plus swap. -1 stays "max".
pub fn swap_v2(limit: Option<i64>, swap: i64) -> Result<String, SwapError> {
    match (limit, swap) {
        (_, -1) => Ok("max".into()),
        (_, 0) => Ok("0".into()),
        (None | Some(-1), _) => Err(SwapError::NoLimit),
        (Some(limit), swap) if swap < limit => Err(SwapError::BelowLimit { swap, limit }),
        (Some(l), s) => Ok((s - l).to_string()),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SwapError {
    #[error("memory.swap needs memory.limit on cgroup v2")]
    NoLimit,
    #[error("memory.swap ({swap}) must not be less than memory.limit ({limit})")]
    BelowLimit { swap: i64, limit: i64 },
}

/// A limit where -1 (or, for pids, 0 and below) means none.
pub fn limit_or_max(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_map_to_weight_like_runc() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(0), 0);
    }

    #[test]
    fn blkio_weight_maps_to_io_weight() {
        assert_eq!(blkio_weight_to_io(10), 1);
        assert_eq!(blkio_weight_to_io(500), 4950);
        assert_eq!(blkio_weight_to_io(1000), 10_000);
    }

    #[test]
    fn swap_is_relative_on_v2() {
        assert_eq!(swap_v2(Some(100), 300).unwrap(), "200");
        assert_eq!(swap_v2(Some(100), -1).unwrap(), "max");
        assert_eq!(swap_v2(None, 0).unwrap(), "0");
        assert!(swap_v2(Some(300), 100)
            .unwrap_err()
            .to_string()
            .contains("must not be less"));
        assert!(swap_v2(None, 100).is_err());
    }

    #[test]
    fn negative_limits_are_max() {
        assert_eq!(limit_or_max(-1), "max");
        assert_eq!(limit_or_max(5), "5");
    }
}

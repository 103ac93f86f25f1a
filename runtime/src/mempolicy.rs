//! `linux.memoryPolicy` (runtime-spec 1.3): the NUMA memory policy of the
//! container's processes, set with set_mempolicy by init and by each
//! exec'd process (a policy is inherited over fork and kept over exec, but
//! an exec'd process descends from berth, not from init).

use crate::error::{Context, OsError};
use oci_spec::runtime::{LinuxMemoryPolicy, MemoryPolicyFlagType, MemoryPolicyModeType};

/// The nodes a mask can name: the kernel's largest MAX_NUMNODES.
const MAX_NODES: usize = 1024;

/// What is wrong with `policy`, as (field, why).
pub fn check(policy: &LinuxMemoryPolicy) -> Result<(), (String, String)> {
    let field = |f: &str| format!("linux.memoryPolicy.{f}");
    let nodes = policy.nodes().as_deref().unwrap_or("");
    let mode = policy.mode();
    match mode {
        MemoryPolicyModeType::MpolDefault | MemoryPolicyModeType::MpolLocal
            if !nodes.is_empty() =>
        {
            return Err((field("nodes"), format!("must be empty for {mode}")));
        }
        MemoryPolicyModeType::MpolBind
        | MemoryPolicyModeType::MpolInterleave
        | MemoryPolicyModeType::MpolWeightedInterleave
        | MemoryPolicyModeType::MpolPreferredMany
            if nodes.is_empty() =>
        {
            return Err((field("nodes"), format!("{mode} needs nodes")));
        }
        _ => {}
    }
    node_mask(nodes)
        .map(drop)
        .map_err(|why| (field("nodes"), why))
}

/// The bitmask of a node list such as `0-3,7`.
fn node_mask(nodes: &str) -> Result<Vec<u64>, String> {
    let mut mask = vec![0u64; MAX_NODES / 64];
    for (first, last) in crate::sched::numbers(nodes)? {
        if last >= MAX_NODES {
            return Err(format!(
                "{nodes:?}: node {last} is beyond {}",
                MAX_NODES - 1
            ));
        }
        for node in first..=last {
            mask[node / 64] |= 1 << (node % 64);
        }
    }
    Ok(mask)
}

/// Sets `policy` for the calling process.
pub fn apply(policy: &LinuxMemoryPolicy) -> Result<(), OsError> {
    let mode = mode_number(policy.mode())
        | policy
            .flags()
            .iter()
            .flatten()
            .map(|f| flag_bit(*f))
            .fold(0, |a, b| a | b);
    let nodes = policy.nodes().as_deref().unwrap_or("");
    // check() ran at create; a mask that fails here would be refused by it.
    let mask = node_mask(nodes).unwrap_or_default();
    let (ptr, maxnode) = match nodes.is_empty() {
        true => (std::ptr::null(), 0),
        // The kernel reads maxnode - 1 bits.
        false => (mask.as_ptr(), MAX_NODES as libc::c_ulong + 1),
    };
    // SAFETY: ptr is null or points to MAX_NODES bits that outlive the
    // call; the kernel only reads them.
    let r = unsafe { libc::syscall(libc::SYS_set_mempolicy, mode, ptr, maxnode) };
    nix::errno::Errno::result(r).map(drop).context(format!(
        "set linux.memoryPolicy ({} {nodes:?})",
        policy.mode()
    ))
}

fn mode_number(m: MemoryPolicyModeType) -> libc::c_int {
    match m {
        MemoryPolicyModeType::MpolDefault => 0,
        MemoryPolicyModeType::MpolPreferred => 1,
        MemoryPolicyModeType::MpolBind => 2,
        MemoryPolicyModeType::MpolInterleave => 3,
        MemoryPolicyModeType::MpolLocal => 4,
        MemoryPolicyModeType::MpolPreferredMany => 5,
        MemoryPolicyModeType::MpolWeightedInterleave => 6,
    }
}

fn flag_bit(f: MemoryPolicyFlagType) -> libc::c_int {
    match f {
        MemoryPolicyFlagType::MpolFNumaBalancing => 1 << 13,
        MemoryPolicyFlagType::MpolFRelativeNodes => 1 << 14,
        MemoryPolicyFlagType::MpolFStaticNodes => 1 << 15,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_lists_become_masks_and_bad_ones_are_named() {
        let mask = node_mask("0-2,65").unwrap();
        assert_eq!((mask[0], mask[1]), (0b111, 0b10));
        assert!(node_mask("").unwrap().iter().all(|w| *w == 0));
        for bad in ["1-", "3-1", "x", "1024"] {
            assert!(node_mask(bad).unwrap_err().contains(bad), "{bad}");
        }
    }
}

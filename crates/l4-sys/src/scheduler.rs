//! Scheduler protocol (label −14): info, run_thread, idle_time.
//!
//! From `l4sys/include/scheduler.h` (`l4_scheduler_info`,
//! `l4_scheduler_run_thread`, `l4_scheduler_idle_time`, `l4_sched_param`,
//! `l4_sched_cpu_set`) and the kernel's `src/kern/scheduler.cpp`,
//! `src/abi/l4_types.cpp`. A new thread never runs before run_thread.

use crate::cap::{kind, Cap};
use crate::error::Error;
use crate::ipc::{expect, rpc};
use crate::item::SendItem;
use crate::kernel::Kernel;
use crate::msgtag::Protocol;

/// Scheduler opcodes (`L4_scheduler_ops`).
pub mod opcode {
    /// `L4_SCHEDULER_INFO_OP`.
    pub const INFO: u64 = 0;
    /// `L4_SCHEDULER_RUN_THREAD_OP`.
    pub const RUN_THREAD: u64 = 1;
    /// `L4_SCHEDULER_IDLE_TIME_OP`.
    pub const IDLE_TIME: u64 = 2;
}

/// A CPU set (`l4_sched_cpu_set_t`): bit n of `map` covers CPUs
/// `offset + n·2^granularity`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuSet {
    /// granularity << 24 | offset.
    pub gran_offset: u64,
    /// The bitmap.
    pub map: u64,
}

impl CpuSet {
    /// All CPUs, as `l4_sched_param()` sets it: granularity 0xFF, map 1.
    pub const ALL: CpuSet = CpuSet { gran_offset: 0xFF00_0000, map: 1 };
    /// `l4_sched_cpu_set(offset, granularity, map)`.
    pub const fn new(offset: u32, granularity: u8, map: u64) -> Self {
        CpuSet { gran_offset: ((granularity as u64) << 24) | (offset as u64 & 0xFF_FFFF), map }
    }

    /// Just CPU `cpu`.
    pub const fn one(cpu: u32) -> Self {
        CpuSet::new(cpu, 0, 1)
    }

    /// log2 of the CPUs one bit covers: the kernel limits it to 24
    /// (`L4_cpu_set_descr::granularity`), so `ALL`'s 0xFF means 2^24.
    pub const fn granularity(&self) -> u32 {
        let g = ((self.gran_offset >> 24) & 0xFF) as u32;
        if g > 24 {
            24
        } else {
            g
        }
    }

    /// The first CPU bit 0 covers: the offset rounded down to the
    /// granularity (`L4_cpu_set_descr::offset`).
    pub const fn offset(&self) -> u32 {
        (self.gran_offset & 0xFF_FFFF) as u32 & !((1u32 << self.granularity()) - 1)
    }

    /// Does the set name `cpu` (`L4_cpu_set::contains`)?
    pub const fn contains(&self, cpu: u32) -> bool {
        if cpu < self.offset() {
            return false;
        }
        let bit = (cpu - self.offset()) >> self.granularity();
        bit < 64 && (self.map >> bit) & 1 != 0
    }

    /// The lowest CPU of the set that `present` (bit n = CPU n) has
    /// (`L4_cpu_set::first`); `None` when there is none.
    pub fn first(&self, present: u64) -> Option<u32> {
        (0..64).find(|&c| present & (1 << c) != 0 && self.contains(c))
    }
}

/// The CPU `l4_scheduler_run_thread` puts a thread on, as the kernel
/// chooses it (`Scheduler::sys_run`): the thread's home CPU if that is
/// online and in the set, else the calling thread's CPU if it is in the
/// set, else the first present CPU of the set. `None`: the set names no
/// CPU there is (the kernel then parks the thread on no CPU at all). A new
/// thread has no home CPU. The kernel keeps no affinity: the set matters
/// only for this choice.
pub fn placement(set: &CpuSet, home: Option<u32>, caller: u32, online: u64) -> Option<u32> {
    let is_online = |c: u32| c < 64 && online & (1 << c) != 0;
    match home {
        Some(h) if is_online(h) && set.contains(h) => Some(h),
        _ if set.contains(caller) => Some(caller),
        _ => set.first(online),
    }
}

/// Scheduling parameters (`l4_sched_param_t`, fixed-priority layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedParam {
    /// Where it may run.
    pub affinity: CpuSet,
    /// Priority 1..255.
    pub prio: u64,
    /// Time quantum in µs (0 = default).
    pub quantum: u64,
}

impl SchedParam {
    /// `l4_sched_param(prio, 0)`.
    pub const fn prio(prio: u64) -> Self {
        SchedParam { affinity: CpuSet::ALL, prio, quantum: 0 }
    }

    /// `l4_sched_param(prio, 0)` with the affinity `l4_sched_cpu_set(cpu, 0, 1)`:
    /// on `cpu` alone.
    pub const fn on(cpu: u32, prio: u64) -> Self {
        SchedParam { affinity: CpuSet::one(cpu), prio, quantum: 0 }
    }
}

/// Gives `thread` a CPU and priority (`l4_scheduler_run_thread`).
pub fn run_thread<K: Kernel>(
    k: &mut K,
    sched: Cap<kind::Scheduler>,
    thread: Cap<kind::Thread>,
    p: &SchedParam,
) -> Result<(), Error> {
    rpc(
        k,
        sched.idx(),
        Protocol::Scheduler.label(),
        &[opcode::RUN_THREAD, p.affinity.gran_offset, p.affinity.map, p.prio, p.quantum],
        &[SendItem::cap_arg(thread.idx())],
    )
    .map(|_| ())
}

/// What the scheduler reports (`l4_scheduler_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedInfo {
    /// Bitmap of present CPUs in the asked set.
    pub cpus: u64,
    /// Maximum number of CPUs.
    pub cpu_max: u64,
    /// Scheduling classes (bit 1 fixed priority, bit 2 WFQ).
    pub classes: u64,
}

/// Asks which CPUs exist (`l4_scheduler_info`).
pub fn info<K: Kernel>(k: &mut K, sched: Cap<kind::Scheduler>, set: CpuSet) -> Result<SchedInfo, Error> {
    let tag = rpc(k, sched.idx(), Protocol::Scheduler.label(), &[opcode::INFO, set.gran_offset], &[])?;
    expect(tag, 2, 0)?;
    let m = &k.utcb().mr;
    Ok(SchedInfo { cpus: m[0], cpu_max: m[1], classes: if tag.words() >= 3 { m[2] } else { 0 } })
}

/// Idle time of the CPU in `set`, µs (`l4_scheduler_idle_time`).
pub fn idle_time<K: Kernel>(k: &mut K, sched: Cap<kind::Scheduler>, set: CpuSet) -> Result<u64, Error> {
    let tag = rpc(k, sched.idx(), Protocol::Scheduler.label(), &[opcode::IDLE_TIME, set.gran_offset, set.map], &[])?;
    expect(tag, 1, 0)?;
    Ok(k.utcb().mr[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::CapIdx;
    use crate::fake::FakeKernel;
    use crate::msgtag::MsgTag;

    const S: Cap<kind::Scheduler> = Cap::new(CapIdx(7));

    #[test]
    fn run_thread_matches_fact_sheet_step_7() {
        let mut k = FakeKernel::new();
        run_thread(&mut k, S, Cap::new(CapIdx(0x21)), &SchedParam::prio(10)).unwrap();
        let e = k.last();
        assert_eq!(e.inv.tag.0, ((-14i64 as u64) << 16) | (1 << 6) | 5);
        assert_eq!(e.mrs(), &[1, 0xFF00_0000, 1, 10, 0, 8, 0x21037]);
    }

    #[test]
    fn cpu_sets_as_the_kernel_reads_them() {
        // l4_sched_param's "all CPUs": granularity 0xFF (taken as 24), map 1
        assert!((0..64).all(|c| CpuSet::ALL.contains(c)));
        assert_eq!(CpuSet::ALL.granularity(), 24);
        let two_and_three = CpuSet::new(2, 0, 0b11);
        assert_eq!(
            (0..6).map(|c| two_and_three.contains(c)).collect::<Vec<_>>(),
            [false, false, true, true, false, false]
        );
        // granularity 1: bit n covers CPUs 2n and 2n+1; the offset is rounded down to it
        let pairs = CpuSet::new(3, 1, 0b10);
        assert_eq!(pairs.offset(), 2);
        assert_eq!((0..8).filter(|&c| pairs.contains(c)).collect::<Vec<_>>(), [4, 5]);
        assert_eq!(CpuSet::one(3).first(0b1111), Some(3));
        assert_eq!(CpuSet::one(5).first(0b1111), None);
        assert_eq!(CpuSet::new(0, 0, 0b1100).first(0b0111), Some(2));
    }

    #[test]
    fn placement_follows_sys_run() {
        let four = 0b1111;
        // a new thread: the caller's CPU when the set has it, else the set's first
        assert_eq!(placement(&CpuSet::ALL, None, 1, four), Some(1));
        assert_eq!(placement(&CpuSet::one(3), None, 1, four), Some(3));
        // an existing thread stays home while the set allows it
        assert_eq!(placement(&CpuSet::ALL, Some(2), 0, four), Some(2));
        assert_eq!(placement(&CpuSet::new(0, 0, 0b11), Some(2), 3, four), Some(0));
        assert_eq!(placement(&CpuSet::new(0, 0, 0b1001), Some(2), 3, four), Some(3));
        // a home CPU that is not online is left
        assert_eq!(placement(&CpuSet::ALL, Some(3), 0, 0b0011), Some(0));
        // nothing there
        assert_eq!(placement(&CpuSet::one(7), None, 0, four), None);
    }

    #[test]
    fn cpu_sets_and_info() {
        assert_eq!(CpuSet::new(4, 2, 0b11).gran_offset, 0x0200_0004);
        let mut k = FakeKernel::new();
        k.answer(MsgTag::new(0, 3, 0, Default::default()), 0, &[1, 4, 2]);
        assert_eq!(info(&mut k, S, CpuSet::ALL), Ok(SchedInfo { cpus: 1, cpu_max: 4, classes: 2 }));
        assert_eq!(k.last().mrs(), &[0, 0xFF00_0000]);
        k.answer(MsgTag::new(0, 1, 0, Default::default()), 0, &[777]);
        assert_eq!(idle_time(&mut k, S, CpuSet::new(0, 0, 1)), Ok(777));
        assert_eq!(k.last().mrs(), &[2, 0, 1]);
    }
}

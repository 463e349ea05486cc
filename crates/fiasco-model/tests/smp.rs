//! Several CPUs: run_thread places a thread as the kernel's `sys_run`
//! does, scheduler info and idle_time per CPU, each CPU runs its own
//! highest-priority thread, the interleaving follows the seed, the other
//! CPUs run on while a host thread's code runs, and a host thread that
//! moves itself to a CPU at a low priority gets it only once that CPU has
//! nothing better to run.

mod common;
use common::*;

use fiasco_model::{Config, Model};
use l4_sys::scheduler::{self, CpuSet, SchedParam};

fn smp(cpus: u32, seed: u64, burst: u32) -> Model {
    Model::new(Config { cpus, seed, smp_burst: burst, ..Config::amd64() })
}

/// Counts in r0 and DATA up to 30, then sleeps for good.
fn bounded(m: &mut Model) {
    program(m, CODE, |cpu| {
        if cpu.state() == 0 {
            let n = cpu.r(0) + 1;
            cpu.set_r(0, n);
            cpu.store_u64(DATA, n)?;
            if n == 30 {
                cpu.goto(1);
            }
        } else {
            let _ = fiasco_model::sys!(cpu, l4_sys::ipc::sleep(cpu, l4_sys::Timeout::NEVER));
        }
        Ok(())
    });
}

fn place(r: &mut fiasco_model::HostThread<'_>, c: &Child, set: CpuSet, prio: u64) {
    scheduler::run_thread(r, SCHED, c.thread, &SchedParam { affinity: set, prio, quantum: 0 }).unwrap();
}

#[test]
fn info_reports_the_cpus_and_run_thread_places_as_sys_run() {
    let mut m = smp(4, 1, 0);
    counter(&mut m);
    let mut r = m.root();
    let i = scheduler::info(&mut r, SCHED, CpuSet { gran_offset: 0, map: 0 }).unwrap();
    assert_eq!((i.cpus, i.cpu_max), (0b1111, 4));
    // from CPU 2 on: bit 0 is CPU 2; all CPUs in one granule: one bit
    assert_eq!(scheduler::info(&mut r, SCHED, CpuSet::new(2, 0, 0)).unwrap().cpus, 0b11);
    assert_eq!(scheduler::info(&mut r, SCHED, CpuSet::ALL).unwrap().cpus, 1);
    let a = spawn(&mut r, 0x20, CODE, 0x10, 10);
    let t = obj(r.model(), a.thread.idx());
    // a new thread: the caller's CPU
    assert_eq!(r.model().thread_cpu(t), Some(0));
    place(&mut r, &a, CpuSet::one(2), 10);
    assert_eq!(r.model().thread_cpu(t), Some(2));
    // home stays while the set has it
    place(&mut r, &a, CpuSet::ALL, 10);
    assert_eq!(r.model().thread_cpu(t), Some(2));
    // not in the set: the caller's CPU (0)
    place(&mut r, &a, CpuSet::new(0, 0, 0b0011), 10);
    assert_eq!(r.model().thread_cpu(t), Some(0));
    // no CPU there is: parked, it never runs
    place(&mut r, &a, CpuSet::one(7), 10);
    let before = child_u64(r.model(), &a, DATA);
    r.model().run(200);
    assert_eq!(child_u64(r.model(), &a, DATA), before);
    assert_eq!(r.model().thread_cpu(t), None);
}

#[test]
fn each_cpu_runs_its_own_highest_priority_thread_and_idles_alone() {
    let mut m = smp(3, 2, 0);
    counter(&mut m);
    let mut r = m.root();
    let a = spawn(&mut r, 0x20, CODE, 0x10, 20);
    let b = spawn(&mut r, 0x30, CODE, 0x20, 10);
    place(&mut r, &b, CpuSet::one(1), 10);
    let idle0 = scheduler::idle_time(&mut r, SCHED, CpuSet::one(2)).unwrap();
    r.model().run(1000);
    let (x, y) = (child_u64(r.model(), &a, DATA), child_u64(r.model(), &b, DATA));
    // on one CPU the lower priority would get nothing (sched.rs)
    assert_eq!(x + y, 1000);
    assert!(x > 300 && y > 300, "both CPUs ran: {x} {y}");
    // CPU 2 had nothing to run all that time, CPUs 0 and 1 always had
    let idle2 = scheduler::idle_time(&mut r, SCHED, CpuSet::one(2)).unwrap();
    assert_eq!(idle2 - idle0, 1000);
    assert_eq!(idle2, r.model().idle_us(2));
    assert!(r.model().idle_us(1) < idle2);
    assert!(scheduler::idle_time(&mut r, SCHED, CpuSet::one(5)).is_err());
}

/// The counts of two equal threads on CPUs 1 and 2, sampled as they run.
fn interleaving(seed: u64) -> Vec<(u64, u64)> {
    let mut m = smp(3, seed, 0);
    counter(&mut m);
    let mut r = m.root();
    let a = spawn(&mut r, 0x20, CODE, 0x10, 10);
    place(&mut r, &a, CpuSet::one(1), 10);
    let b = spawn(&mut r, 0x30, CODE, 0x20, 10);
    place(&mut r, &b, CpuSet::one(2), 10);
    (0..20)
        .map(|_| {
            r.model().run(7);
            (child_u64(r.model(), &a, DATA), child_u64(r.model(), &b, DATA))
        })
        .collect()
}

#[test]
fn the_interleaving_follows_the_seed() {
    assert_eq!(interleaving(11), interleaving(11));
    let runs: Vec<_> = (0..4).map(interleaving).collect();
    assert!(runs.windows(2).any(|w| w[0] != w[1]), "seeds give other interleavings");
    assert!(runs.iter().all(|s| s.last().is_some_and(|&(x, y)| x + y == 140)));
}

#[test]
fn other_cpus_run_on_while_host_code_runs() {
    for burst in [0, 4] {
        let mut m = smp(2, 3, burst);
        bounded(&mut m);
        let mut r = m.root();
        let a = spawn(&mut r, 0x20, CODE, 0x10, 10);
        place(&mut r, &a, CpuSet::one(1), 10);
        // the root never blocks: CPU 1 runs only beside it
        for _ in 0..60 {
            scheduler::info(&mut r, SCHED, CpuSet::ALL).unwrap();
        }
        let n = child_u64(r.model(), &a, DATA);
        if burst == 0 {
            assert_eq!(n, 0);
        } else {
            assert!(n > 0, "CPU 1 ran while the root's code ran");
        }
    }
}

#[test]
fn a_host_thread_moving_to_a_cpu_at_a_low_priority_waits_until_that_cpu_is_free() {
    let mut m = smp(4, 5, 0);
    bounded(&mut m);
    let mut r = m.root();
    let a = spawn(&mut r, 0x20, CODE, 0x10, 10);
    place(&mut r, &a, CpuSet::one(2), 10);
    assert_eq!(child_u64(r.model(), &a, DATA), 0);
    let me = SchedParam { affinity: CpuSet::one(2), prio: 1, quantum: 0 };
    scheduler::run_thread(&mut r, SCHED, ROOT_THREAD, &me).unwrap();
    // back from the call only once the thread of priority 10 there blocked
    assert_eq!(child_u64(r.model(), &a, DATA), 30);
    let root = r.model().boot_objects().root_thread;
    assert_eq!(r.model().thread_cpu(root), Some(2));
    // and home again at its own priority
    let home = SchedParam { affinity: CpuSet::one(0), prio: 200, quantum: 0 };
    scheduler::run_thread(&mut r, SCHED, ROOT_THREAD, &home).unwrap();
    assert_eq!(r.model().thread_cpu(root), Some(0));
}

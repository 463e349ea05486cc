//! Scheduling and determinism: priorities, round robin, the same scenario
//! gives the same trace every run, and the step limit stops everything.

mod common;
use common::*;

use fiasco_model::sys;
use l4_sys::cap::CapIdx;
use l4_sys::msgtag::{MsgTag, TagFlags};
use l4_sys::{factory, ipc, irq, Kernel, Timeout, TimeoutPair};

#[test]
fn the_higher_priority_runs_and_equal_priorities_share() {
    let mut m = model();
    counter(&mut m);
    let mut r = m.root();
    let a = spawn(&mut r, 0x20, CODE, 0x10, 10);
    let b = spawn(&mut r, 0x30, CODE, 0x20, 20);
    r.model().run(50);
    assert_eq!((child_u64(r.model(), &a, DATA), child_u64(r.model(), &b, DATA)), (0, 50));
    let mut m = model();
    counter(&mut m);
    let mut r = m.root();
    let a = spawn(&mut r, 0x20, CODE, 0x10, 10);
    let b = spawn(&mut r, 0x30, CODE, 0x20, 10);
    r.model().run(1000);
    let (x, y) = (child_u64(r.model(), &a, DATA), child_u64(r.model(), &b, DATA));
    assert_eq!(x + y, 1000);
    assert_eq!(x, 500, "two quanta of 100 steps each, five times");
}

/// Three threads: two call the root, one triggers an IRQ bound to the root.
fn scenario() -> (Vec<fiasco_model::TraceEntry>, u64, u64) {
    let mut m = model();
    program(&mut m, CODE, |cpu| match cpu.state() {
        0 => {
            cpu.utcb().mr[0] = cpu.r(0);
            let _ = sys!(cpu, ipc::call(cpu, CapIdx(4), MsgTag::new(0, 1, 0, TagFlags::empty()), TimeoutPair::NEVER));
            cpu.set_r(0, cpu.r(0) + 1);
            Ok(())
        }
        _ => Ok(()),
    });
    program(&mut m, CODE + 0x1000_0000, |cpu| {
        // one kernel call per state (the replay rule)
        if cpu.state() == 0 {
            let _ = sys!(cpu, irq::trigger(cpu, l4_sys::Cap::new(CapIdx(9))));
            cpu.goto(1);
        } else {
            let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(30)));
            cpu.goto(0);
        }
        Ok(())
    });
    let mut r = m.root();
    let _a = spawn(&mut r, 0x20, CODE, 0x10, 10);
    let _b = spawn(&mut r, 0x30, CODE, 0x20, 10);
    let c = spawn(&mut r, 0x40, CODE, 0x30, 10);
    let q = factory::create_irq(&mut r, F, CapIdx(0x60)).unwrap();
    irq::bind_thread(&mut r, q, ROOT_THREAD, 0x99).unwrap();
    let it = l4_sys::item::SendItem::map_obj(
        CapIdx(9),
        l4_sys::Fpage::obj(CapIdx(0x60), 0, l4_sys::CapRights::RWS),
        Default::default(),
        false,
    );
    l4_sys::task::map(&mut r, c.task, ME, it).unwrap();
    // c's code: the second program, mapped at its address
    let w = ROOT_WINDOW + 0x40 * 0x10_0000 + 0x3000;
    l4_sys::sigma0::map_any(&mut r, S0, 12, l4_sys::Fpage::mem(w, 12, l4_sys::MemRights::empty())).unwrap();
    let it = l4_sys::item::SendItem::map_mem(
        CODE + 0x1000_0000,
        l4_sys::Fpage::mem(w, 12, l4_sys::MemRights::RX),
        Default::default(),
        false,
    );
    l4_sys::task::map(&mut r, c.task, ME, it).unwrap();
    l4_sys::thread::ex_regs(&mut r, c.thread, CODE + 0x1000_0000, !0, Default::default()).unwrap();
    let mut seen = 0u64;
    for _ in 0..60 {
        let got = ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
        seen = seen.wrapping_mul(31).wrapping_add(got.label ^ r.utcb().mr[0]);
        if got.label != 0x99 {
            ipc::reply(&mut r, MsgTag(0), 0, TimeoutPair::NEVER).unwrap();
        }
    }
    let m = r.model();
    (m.trace().to_vec(), m.clock_us(), seen)
}

#[test]
fn the_same_scenario_gives_the_same_trace() {
    let (t1, c1, s1) = scenario();
    let (t2, c2, s2) = scenario();
    assert!(t1.len() > 100, "a real scenario ({} entries)", t1.len());
    assert_eq!(t1, t2);
    assert_eq!((c1, s1), (c2, s2));
}

#[test]
fn the_step_limit_stops_everything() {
    let mut m = model();
    counter(&mut m);
    let mut r = m.root();
    let a = spawn(&mut r, 0x20, CODE, 0x10, 10);
    let s = r.model().steps();
    r.model().set_step_limit(Some(s + 7));
    r.model().run(1000);
    assert!(r.model().halted());
    assert_eq!(child_u64(r.model(), &a, DATA), 7);
    // the root's next blocking call cannot complete
    let e = ipc::wait(&mut r, TimeoutPair::NEVER).unwrap_err();
    assert_eq!(e, l4_sys::Error::Ipc(l4_sys::IpcError::from_tcr(fiasco_model::host::TCR_MODEL_HALTED)));
    let _ = r.utcb();
}

#[test]
#[should_panic(expected = "replay rule")]
fn a_program_that_breaks_the_replay_rule_is_caught() {
    let mut m = model();
    // two kernel calls in one state: the re-run after the first call
    // completes reaches the second call in its place
    program(&mut m, CODE, |cpu| {
        let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(10)));
        let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(20)));
        Ok(())
    });
    let mut r = m.root();
    let _a = spawn(&mut r, 0x20, CODE, 0x10, 10);
    r.model().run(10);
}

#[test]
fn a_planned_crash_hits_the_nth_kernel_entry() {
    let mut m = model();
    // a child that sleeps forever in 10 µs pieces, counting in r0 and DATA
    program(&mut m, CODE, |cpu| {
        let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(10)));
        let n = cpu.r(0) + 1;
        cpu.set_r(0, n);
        cpu.store_u64(DATA, n)?;
        Ok(())
    });
    let mut r = m.root();
    let child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    let t = obj(r.model(), child.task.idx());
    r.model().crash_at_entry(t, 5);
    let e = ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
    assert!(e.tag.is_exception());
    assert_eq!(r.utcb().mr[l4_sys::exc::amd64::mr::TRAPNO], 6);
    // five entries completed (each followed by a count), the sixth crashed
    assert_eq!(child_u64(r.model(), &child, DATA), 5);
    assert!(!r.model().crash_pending());
}

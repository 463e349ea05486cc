//! IRQs: one pending delivery at a time (triggers coalesce), rebind moves
//! delivery and label, detach reports a dropped pending IRQ, and a thread
//! blocked in a send is cancelled with SECANCELED.

mod common;
use common::*;

use fiasco_model::sys;
use l4_sys::cap::CapIdx;
use l4_sys::irq::DetachResult;
use l4_sys::msgtag::{MsgTag, TagFlags};
use l4_sys::thread::{ExRegsFlags, KEEP};
use l4_sys::{factory, ipc, irq, thread, Error, TimeoutPair};

#[test]
fn triggers_coalesce_into_one_pending_delivery() {
    let mut m = model();
    let mut r = m.root();
    let q = factory::create_irq(&mut r, F, CapIdx(0x20)).unwrap();
    irq::bind_thread(&mut r, q, ROOT_THREAD, 0x11).unwrap();
    for _ in 0..3 {
        irq::trigger(&mut r, q).unwrap();
    }
    assert_eq!(ipc::wait(&mut r, TimeoutPair::RECV_ZERO).unwrap().label, 0x11);
    assert!(ipc::wait(&mut r, TimeoutPair::RECV_ZERO).unwrap_err().is_timeout(), "one delivery for three triggers");
}

#[test]
fn rebind_moves_delivery_and_detach_drops_a_pending_irq() {
    let mut m = model();
    // the child waits for anything and records the label it got
    program(&mut m, CODE, |cpu| {
        let got = sys!(cpu, ipc::wait(cpu, TimeoutPair::NEVER));
        if let Ok(g) = got {
            let n = cpu.load_u64(DATA)?;
            cpu.store_u64(DATA + 8 + 8 * (n % 8), g.label)?;
            cpu.store_u64(DATA, n + 1)?;
        }
        Ok(())
    });
    let mut r = m.root();
    let child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    let q = factory::create_irq(&mut r, F, CapIdx(0x40)).unwrap();
    irq::bind_thread(&mut r, q, ROOT_THREAD, 0x11).unwrap();
    irq::trigger(&mut r, q).unwrap();
    assert_eq!(ipc::wait(&mut r, TimeoutPair::RECV_ZERO).unwrap().label, 0x11);
    // rebind to the child's thread with another label
    irq::bind_thread(&mut r, q, child.thread, 0x22).unwrap();
    irq::trigger(&mut r, q).unwrap();
    r.model().run(10);
    assert_eq!(child_u64(r.model(), &child, DATA), 1);
    assert_eq!(child_u64(r.model(), &child, DATA + 8), 0x22);
    assert!(ipc::wait(&mut r, TimeoutPair::RECV_ZERO).unwrap_err().is_timeout(), "the root no longer gets it");
    // detach while one is pending (bound to the root, which does not wait)
    irq::bind_thread(&mut r, q, ROOT_THREAD, 0x33).unwrap();
    irq::trigger(&mut r, q).unwrap();
    assert_eq!(irq::detach(&mut r, q), Ok(DetachResult::WasPending));
    assert_eq!(irq::detach(&mut r, q), Ok(DetachResult::Idle));
    assert!(ipc::wait(&mut r, TimeoutPair::RECV_ZERO).unwrap_err().is_timeout());
}

#[test]
fn cancel_aborts_a_blocked_send() {
    let mut m = model();
    program_once(&mut m, CODE, |cpu| {
        // slot 4 is the gate to the root, which does not receive
        let r = sys!(cpu, ipc::send(cpu, CapIdx(4), MsgTag::new(0, 0, 0, TagFlags::empty()), TimeoutPair::NEVER));
        let code = match r {
            Err(Error::Ipc(e)) => e.to_tcr(),
            _ => 0xff,
        };
        cpu.store_u64(DATA, 0x100 | code)?;
        Ok(())
    });
    let mut r = m.root();
    let child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    r.model().run(10);
    thread::ex_regs(&mut r, child.thread, KEEP, KEEP, ExRegsFlags::CANCEL).unwrap();
    r.model().run(10);
    assert_eq!(child_u64(r.model(), &child, DATA), 0x100 | l4_sys::error::tcr::SECANCELED);
}

//! IPC: timeouts (relative, absolute, zero), call/reply through the implicit
//! reply capability, labels (gate vs. direct), typed items with and without
//! receive buffers, cancellation, sender order, sends to an unbound gate.

mod common;
use common::*;

use fiasco_model::sys;
use l4_sys::cap::CapIdx;
use l4_sys::error::{IpcErrorCode, Phase};
use l4_sys::fpage::{CapRights, Fpage};
use l4_sys::item::{rcv_single_cap, ObjAttr, SendItem};
use l4_sys::msgtag::{MsgTag, TagFlags};
use l4_sys::thread::{ExRegsFlags, KEEP};
use l4_sys::{factory, ipc, ipc_gate, task, thread, Error, IpcError, Kernel, Timeout, TimeoutPair};

fn ipc_err(code: IpcErrorCode, phase: Phase) -> Error {
    Error::Ipc(IpcError { code, phase })
}

#[test]
fn relative_absolute_and_zero_timeouts() {
    let mut m = model();
    let mut r = m.root();
    let t0 = r.model().clock_us();
    let e = ipc::wait(&mut r, TimeoutPair::new(Timeout::NEVER, Timeout::from_us(1000))).unwrap_err();
    assert_eq!(e, ipc_err(IpcErrorCode::Timeout, Phase::Receive));
    assert_eq!(r.model().clock_us() - t0, 1000);
    // absolute: the deadline is in BR2
    let deadline = r.model().clock_us() + 300;
    r.utcb().br[2] = deadline;
    let e = ipc::wait(&mut r, TimeoutPair::new(Timeout::NEVER, Timeout::abs_in_br(2))).unwrap_err();
    assert!(e.is_timeout());
    assert_eq!(r.model().clock_us(), deadline);
    // zero: at once
    let t1 = r.model().clock_us();
    assert!(ipc::wait(&mut r, TimeoutPair::RECV_ZERO).unwrap_err().is_timeout());
    assert_eq!(r.model().clock_us(), t1);
    // a send to a thread that does not receive
    let th = factory::create_thread(&mut r, F, CapIdx(0x20)).unwrap();
    let e = ipc::send(&mut r, th.idx(), MsgTag(0), TimeoutPair::SEND_ZERO).unwrap_err();
    assert_eq!(e, ipc_err(IpcErrorCode::Timeout, Phase::Send));
    let e = ipc::send(&mut r, th.idx(), MsgTag(0), TimeoutPair::new(Timeout::from_us(50), Timeout::NEVER)).unwrap_err();
    assert_eq!(e, ipc_err(IpcErrorCode::Timeout, Phase::Send));
}

/// An echo server: replies MR0 + 1 and the label it got in MR1; for a
/// request word of 42 it also sends its slot 7 as a capability.
fn echo_server(m: &mut fiasco_model::Model) {
    program(m, CODE, |cpu| loop {
        match cpu.state() {
            0 => {
                let got = sys!(cpu, ipc::wait(cpu, TimeoutPair::NEVER));
                if let Ok(g) = got {
                    let w = cpu.utcb().mr[0];
                    cpu.set_r(0, g.label);
                    cpu.set_r(1, w);
                    cpu.goto(1);
                }
            }
            _ => {
                let (label, w) = (cpu.r(0), cpu.r(1));
                cpu.utcb().mr[0] = w + 1;
                cpu.utcb().mr[1] = label;
                let items = if w == 42 {
                    let it =
                        SendItem::map_obj(CapIdx(0), Fpage::obj(CapIdx(7), 0, CapRights::RWS), ObjAttr::empty(), false);
                    cpu.utcb().mr[2..4].copy_from_slice(&it.words());
                    1
                } else {
                    0
                };
                let tag = MsgTag::new(0, 2, items, TagFlags::empty());
                let got = sys!(cpu, ipc::reply_and_wait(cpu, tag, 0, TimeoutPair::NEVER));
                match got {
                    Ok(g) => {
                        let w = cpu.utcb().mr[0];
                        cpu.set_r(0, g.label);
                        cpu.set_r(1, w);
                    }
                    Err(e) => {
                        // record the error and wait again
                        let code = match e {
                            Error::Ipc(i) => i.to_tcr(),
                            _ => 0xff,
                        };
                        cpu.store_u64(DATA + 8, code)?;
                        cpu.goto(0);
                    }
                }
            }
        }
    });
}

#[test]
fn call_and_reply_through_a_gate_and_directly() {
    let mut m = model();
    echo_server(&mut m);
    let mut r = m.root();
    let child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    r.model().run(10); // the server enters its wait
                       // a gate bound to the server thread with label 0x80
    factory::create_gate(&mut r, F, CapIdx(0x40), Some((child.thread, 0x80))).unwrap();
    r.utcb().mr[0] = 7;
    let got = ipc::call(&mut r, CapIdx(0x40), MsgTag::new(0, 1, 0, TagFlags::empty()), TimeoutPair::NEVER).unwrap();
    assert_eq!(got.tag.words(), 2);
    assert_eq!(r.utcb().mr[0], 8);
    assert_eq!(r.utcb().mr[1], 0x80 | 3, "server saw gate label | W | S");
    // a client capability (no S): the server sees only W
    let it = SendItem::map_obj(CapIdx(0x41), Fpage::obj(CapIdx(0x40), 0, CapRights::RW), ObjAttr::empty(), false);
    task::map(&mut r, ME, ME, it).unwrap();
    r.utcb().mr[0] = 1;
    ipc::call(&mut r, CapIdx(0x41), MsgTag::new(0, 1, 0, TagFlags::empty()), TimeoutPair::NEVER).unwrap();
    assert_eq!(r.utcb().mr[1], 0x80 | 1);
    // directly to the thread capability: the label is the sender's choice
    r.utcb().mr[0] = 100;
    let tag = MsgTag::new(0, 1, 0, TagFlags::empty());
    let inv = l4_sys::Invocation {
        dest: child.thread.sel() | ipc::op::CALL,
        tag,
        label: 0x1234,
        timeout: TimeoutPair::NEVER,
    };
    let out = r.invoke(inv);
    assert!(!out.tag.has_error());
    assert_eq!((r.utcb().mr[0], r.utcb().mr[1]), (101, 0x1234));
}

#[test]
fn items_need_receive_buffers() {
    let mut m = model();
    echo_server(&mut m);
    let mut r = m.root();
    let child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    factory::create_irq(&mut r, F, CapIdx(0x50)).unwrap();
    let it = SendItem::map_obj(CapIdx(7), Fpage::obj(CapIdx(0x50), 0, CapRights::RWSD), ObjAttr::empty(), false);
    task::map(&mut r, child.task, ME, it).unwrap();
    factory::create_gate(&mut r, F, CapIdx(0x40), Some((child.thread, 0x80))).unwrap();
    // with a buffer: the server's IRQ capability arrives in slot 0x60
    r.utcb().br[0] = rcv_single_cap(CapIdx(0x60));
    r.utcb().mr[0] = 42;
    let got = ipc::call(&mut r, CapIdx(0x40), MsgTag::new(0, 1, 0, TagFlags::empty()), TimeoutPair::NEVER).unwrap();
    assert_eq!(got.tag.items(), 1);
    // the same object; the fpage's RWS limits the rights (no D)
    assert_eq!(task::cap_equal(&mut r, ME, CapIdx(0x60), CapIdx(0x50)), Ok(true));
    let mm = r.model();
    let row = mm.cap_table(mm.boot_objects().root_task).into_iter().find(|x| x.idx == 0x60).unwrap();
    assert_eq!(row.rights, 7);
    // without: both sides see a cut message
    r.utcb().br[0] = 0;
    r.utcb().mr[0] = 42;
    let e = ipc::call(&mut r, CapIdx(0x40), MsgTag::new(0, 1, 0, TagFlags::empty()), TimeoutPair::NEVER).unwrap_err();
    assert_eq!(e, ipc_err(IpcErrorCode::MsgCut, Phase::Receive));
    r.model().run(10);
    assert_eq!(child_u64(r.model(), &child, DATA + 8), l4_sys::error::tcr::SEMSGCUT);
}

#[test]
fn cancel_aborts_a_blocked_receive() {
    let mut m = model();
    program_once(&mut m, CODE, |cpu| {
        let r = sys!(cpu, ipc::wait(cpu, TimeoutPair::NEVER));
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
    assert_eq!(child_u64(r.model(), &child, DATA), 0);
    thread::ex_regs(&mut r, child.thread, KEEP, KEEP, ExRegsFlags::CANCEL).unwrap();
    r.model().run(10);
    assert_eq!(child_u64(r.model(), &child, DATA), 0x100 | l4_sys::error::tcr::RECANCELED);
}

#[test]
fn queued_senders_are_served_by_priority() {
    let mut m = model();
    // each child sends its priority (register 7 = its marker) to its slot 4
    program_once(&mut m, CODE, |cpu| {
        let mark = cpu.load_u64(DATA)?;
        cpu.utcb().mr[0] = mark;
        let _ = sys!(cpu, ipc::call(cpu, CapIdx(4), MsgTag::new(0, 1, 0, TagFlags::empty()), TimeoutPair::NEVER));
        Ok(())
    });
    let mut r = m.root();
    let a = spawn(&mut r, 0x20, CODE, 0x10, 10);
    let b = spawn(&mut r, 0x30, CODE, 0x20, 20);
    for (c, mark) in [(&a, 10u64), (&b, 20)] {
        let w = ROOT_WINDOW + c.task.idx().0 * 0x10_0000 + 0x1000;
        r.write(w, &mark.to_le_bytes()).unwrap();
    }
    r.model().run(50); // both block sending to the root
    let first = ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
    assert_eq!((first.label, r.utcb().mr[0]), (0x20 | 3, 20), "the higher priority first");
    ipc::reply(&mut r, MsgTag(0), 0, TimeoutPair::NEVER).unwrap();
    let second = ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
    assert_eq!((second.label, r.utcb().mr[0]), (0x10 | 3, 10));
}

#[test]
fn a_send_to_an_unbound_gate_waits_for_the_bind() {
    let mut m = model();
    program_once(&mut m, CODE, |cpu| {
        cpu.utcb().mr[0] = 77;
        let _ = sys!(cpu, ipc::send(cpu, CapIdx(6), MsgTag::new(0, 1, 0, TagFlags::empty()), TimeoutPair::NEVER));
        Ok(())
    });
    let mut r = m.root();
    factory::create_gate(&mut r, F, CapIdx(0x40), None).unwrap();
    let child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    let it = SendItem::map_obj(CapIdx(6), Fpage::obj(CapIdx(0x40), 0, CapRights::RW), ObjAttr::empty(), false);
    task::map(&mut r, child.task, ME, it).unwrap();
    r.model().run(20);
    assert!(ipc::wait(&mut r, TimeoutPair::RECV_ZERO).unwrap_err().is_timeout(), "nothing arrives while unbound");
    l4_sys::rcv_endpoint::bind_thread(
        &mut r,
        l4_sys::Cap::<l4_sys::cap::kind::IpcGate>::new(CapIdx(0x40)),
        ROOT_THREAD,
        0x90,
    )
    .unwrap();
    assert_eq!(ipc_gate::get_infos(&mut r, l4_sys::Cap::new(CapIdx(0x40))), Ok(0x90));
    let got = ipc::wait(&mut r, TimeoutPair::new(Timeout::NEVER, Timeout::from_us(1000))).unwrap();
    assert_eq!((got.label, r.utcb().mr[0]), (0x90 | 1, 77));
}

#[test]
fn local_id_buffers_return_labels_of_own_gates() {
    let mut m = model();
    echo_server(&mut m);
    let mut r = m.root();
    let child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    // the child's slot 7 holds a gate bound to the ROOT (label 0x70): sent
    // back into a LOCAL_ID buffer, the root gets the label, not a mapping
    factory::create_gate(&mut r, F, CapIdx(0x50), Some((ROOT_THREAD, 0x70))).unwrap();
    let it = SendItem::map_obj(CapIdx(7), Fpage::obj(CapIdx(0x50), 0, CapRights::RWS), ObjAttr::empty(), false);
    task::map(&mut r, child.task, ME, it).unwrap();
    factory::create_gate(&mut r, F, CapIdx(0x40), Some((child.thread, 0x80))).unwrap();
    r.utcb().br[0] = l4_sys::item::rcv_single_cap_local_id(CapIdx(0x60));
    r.utcb().mr[0] = 42;
    let got = ipc::call(&mut r, CapIdx(0x40), MsgTag::new(0, 1, 0, TagFlags::empty()), TimeoutPair::NEVER).unwrap();
    assert_eq!(got.tag.items(), 1);
    let item = l4_sys::item::RcvItem { control: r.utcb().mr[2], data: r.utcb().mr[3] };
    assert_eq!(item.kind(), l4_sys::item::RcvKind::LocalId);
    assert_eq!(item.data, 0x70 | 3);
    assert_eq!(task::cap_valid(&mut r, ME, CapIdx(0x60)), Ok(false), "nothing was mapped");
}

//! Threads: exceptions forced by ex_regs carry the full register set and a
//! full-size reply writes it back; a short reply resumes unchanged; a plain
//! send resumes too; crashes reach the handler; control and ex_regs errors;
//! stats_time; both architectures' layouts.

mod common;
use common::*;

use fiasco_model::{Config, Model};
use l4_sys::cap::CapIdx;
use l4_sys::exc::amd64::mr;
use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::msgtag::{MsgTag, TagFlags};
use l4_sys::thread::{Control, ExRegsFlags, KEEP};
use l4_sys::{factory, ipc, thread, Errno, Error, Kernel, TimeoutPair};

#[test]
fn triggered_exception_carries_registers_and_a_full_reply_sets_them() {
    let mut m = model();
    counter(&mut m);
    let mut r = m.root();
    let child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    r.model().run(20);
    assert_eq!(child_u64(r.model(), &child, DATA), 20);
    thread::ex_regs(&mut r, child.thread, KEEP, KEEP, ExRegsFlags::TRIGGER_EXCEPTION).unwrap();
    let e = ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
    assert!(e.tag.is_exception());
    assert_eq!(e.tag.words(), 26);
    assert_eq!(e.label, 0x10 | 3);
    assert!(e.tag.flags().contains(TagFlags::TRANSFER_FPU));
    let mut regs = [0u64; 26];
    regs.copy_from_slice(&r.utcb().mr[..26]);
    assert_eq!(regs[mr::TRAPNO], 0xFF);
    assert_eq!(regs[mr::RBX], 20, "program register 0 is rbx");
    assert_eq!(regs[mr::IP], CODE);
    assert_eq!(regs[mr::GS_BASE], UTCB + 0x1f8);
    // a full-size reply sets the registers: the count jumps to 1000
    regs[mr::RBX] = 1000;
    r.utcb().mr[..26].copy_from_slice(&regs);
    ipc::reply(&mut r, MsgTag::new(0, 26, 0, TagFlags::empty()), 0, TimeoutPair::NEVER).unwrap();
    r.model().run(5);
    assert_eq!(child_u64(r.model(), &child, DATA), 1005);
    // a short reply resumes with the registers as they were
    thread::ex_regs(&mut r, child.thread, KEEP, KEEP, ExRegsFlags::TRIGGER_EXCEPTION).unwrap();
    ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
    let at = r.utcb().mr[mr::RBX];
    r.utcb().mr[mr::RBX] = 5;
    ipc::reply(&mut r, MsgTag::new(0, 1, 0, TagFlags::empty()), 0, TimeoutPair::NEVER).unwrap();
    r.model().run(3);
    assert_eq!(child_u64(r.model(), &child, DATA), at + 3);
}

#[test]
fn a_plain_send_to_the_thread_resumes_it_like_a_reply() {
    let mut m = model();
    counter(&mut m);
    let mut r = m.root();
    let child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    r.model().run(3);
    thread::ex_regs(&mut r, child.thread, KEEP, KEEP, ExRegsFlags::TRIGGER_EXCEPTION).unwrap();
    ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
    let mut regs = [0u64; 26];
    regs.copy_from_slice(&r.utcb().mr[..26]);
    regs[mr::RBX] = 500;
    // another message arrives in between (the implicit reply cap is gone)
    r.utcb().mr[..26].copy_from_slice(&regs);
    ipc::send(&mut r, child.thread.idx(), MsgTag::new(0, 26, 0, TagFlags::empty()), TimeoutPair::SEND_ZERO).unwrap();
    r.model().run(2);
    assert_eq!(child_u64(r.model(), &child, DATA), 502);
}

#[test]
fn trigger_on_a_never_run_thread_reports_ip_zero() {
    let mut m = model();
    counter(&mut m);
    let mut r = m.root();
    let child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    // a second thread in the child that never ran
    let th = factory::create_thread(&mut r, F, CapIdx(0x30)).unwrap();
    let c = Control::new().pager(CapIdx(4)).exc_handler(CapIdx(4)).bind(UTCB + 0x400, child.task);
    thread::control(&mut r, th, &c).unwrap();
    l4_sys::scheduler::run_thread(&mut r, SCHED, th, &l4_sys::scheduler::SchedParam::prio(50)).unwrap();
    thread::ex_regs(&mut r, th, KEEP, KEEP, ExRegsFlags::TRIGGER_EXCEPTION).unwrap();
    let e = ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
    assert!(e.tag.is_exception());
    assert_eq!((r.utcb().mr[mr::TRAPNO], r.utcb().mr[mr::IP]), (0xFF, 0));
    assert_eq!(r.utcb().mr[mr::GS_BASE], UTCB + 0x400 + 0x1f8);
}

#[test]
fn a_crash_reaches_the_exception_handler() {
    let mut m = model();
    program(&mut m, CODE, |cpu| {
        if cpu.r(0) < 3 {
            cpu.set_r(0, cpu.r(0) + 1);
            Ok(())
        } else {
            Err(cpu.crash())
        }
    });
    let mut r = m.root();
    let _child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    let e = ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
    assert!(e.tag.is_exception());
    assert_eq!(r.utcb().mr[mr::TRAPNO], 6, "invalid opcode");
    assert_eq!(r.utcb().mr[mr::RBX], 3);
}

#[test]
fn control_and_ex_regs_refuse_bad_requests() {
    let mut m = model();
    counter(&mut m);
    let mut r = m.root();
    let child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    // already bound
    let c = Control::new().bind(UTCB + 0x400, child.task);
    assert_eq!(thread::control(&mut r, child.thread, &c), Err(Error::Kernel(Errno::Inval)));
    // UTCB outside the task's ku_mem
    let th = factory::create_thread(&mut r, F, CapIdx(0x30)).unwrap();
    let c = Control::new().bind(0x7000_0000, child.task);
    assert_eq!(thread::control(&mut r, th, &c), Err(Error::Kernel(Errno::Inval)));
    // too few words for control, wrong word count for ex_regs
    assert_eq!(ipc::rpc(&mut r, th.idx(), -12, &[0, 0, 0], &[]), Err(Error::Kernel(Errno::Inval)));
    assert_eq!(ipc::rpc(&mut r, th.idx(), -12, &[1, 0], &[]), Err(Error::Kernel(Errno::Inval)));
    // unknown thread op
    assert_eq!(ipc::rpc(&mut r, th.idx(), -12, &[0x77], &[]), Err(Error::Kernel(Errno::NoSys)));
    // add ku_mem and bind there
    l4_sys::task::add_ku_mem(&mut r, child.task, Fpage::mem(0x7000_0000, 12, MemRights::empty())).unwrap();
    thread::control(&mut r, th, &Control::new().bind(0x7000_0000, child.task)).unwrap();
}

#[test]
fn stats_time_counts_the_threads_steps() {
    let mut m = model();
    counter(&mut m);
    let mut r = m.root();
    let child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    let t0 = thread::stats_time(&mut r, child.thread).unwrap();
    r.model().run(40);
    let t1 = thread::stats_time(&mut r, child.thread).unwrap();
    assert_eq!(t1 - t0, 40);
}

#[test]
fn arm64_layouts() {
    let mut m = Model::new(Config::arm64());
    program(&mut m, CODE, |cpu| {
        cpu.set_r(0, cpu.r(0) + 1);
        Ok(())
    });
    let mut r = m.root();
    let rt = r.model().boot_objects().root_thread;
    assert_eq!(r.model().thread_regs(rt).unwrap().len(), 40);
    let child = spawn(&mut r, 0x20, CODE, 0x10, 10);
    r.model().run(7);
    thread::ex_regs(&mut r, child.thread, KEEP, KEEP, ExRegsFlags::TRIGGER_EXCEPTION | ExRegsFlags::ARM64_SET_EL_EL0)
        .unwrap();
    let e = ipc::wait(&mut r, TimeoutPair::NEVER).unwrap();
    use l4_sys::exc::arm64;
    assert_eq!(e.tag.words(), 40);
    let regs = arm64::ExcRegs(r.utcb().mr[..40].try_into().unwrap());
    assert_eq!(regs.ec(), 0x3E);
    assert_eq!(regs.x(19), 7, "program register 0 is x19");
    assert_eq!(regs.utcb(), UTCB);
}

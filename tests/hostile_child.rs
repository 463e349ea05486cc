//! A hostile child: thousands of random requests (random slots, protocol
//! labels, opcodes, words, typed items and receive buffers) to every
//! service rtcr offers. rtcr answers each with an error or a result and
//! never fails; and after every single request the child's capability
//! space and address space are walked: the child holds nothing of rtcr's own (its
//! task, thread, factory, pager/sigma0, log, ICU, scheduler, debugger) and
//! no memory but what rtcr gave it.

use rtcr_sim::*;

use fiasco_model::{sys, Cpu, Trap};
use l4_sys::cap::CapIdx;
use l4_sys::exc::Arch;
use l4_sys::msgtag::{MsgTag, TagFlags};
use l4_sys::{ipc, Kernel, Timeout, TimeoutPair};
use rtcr_core::supervisor::ServeOutcome;
use rtcr_core::Supervisor;
use std::sync::Arc;

fn xorshift(x: u64) -> u64 {
    let mut x = x;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// Each step: one random call (PRNG state in r0), with a short receive
/// timeout so send-only operations do not block it forever.
fn hostile() -> Arc<dyn fiasco_model::Program> {
    struct H;
    impl fiasco_model::Program for H {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            if cpu.state() == 0 {
                // a fresh child: seed from the (deterministic) clock, in a
                // state of its own (no kernel call here)
                let seed = 0x9E37_79B9_7F4A_7C15 ^ cpu.clock_us().wrapping_mul(0x2545_F491_4F6C_DD1D);
                cpu.set_r(0, seed | 1);
                cpu.goto(1);
                return Ok(());
            }
            let mut x = cpu.r(0);
            let mut next = || {
                x = xorshift(x);
                x
            };
            // (not its exception gate: a message there looks like a crash
            // of its own, which only makes rtcr restore it — see SECURITY.md)
            let slot = [1u64, 2, 3, 4, 5, 6, 7, 0x10, 0x11, 0x20, 0x30, 99][(next() % 12) as usize];
            let labels = [-1i64, -2, -6, -10, -11, -12, -13, -14, -15, -18, -20, -23, 0, 5];
            let label = labels[(next() % labels.len() as u64) as usize];
            let words = (next() % 7) as usize;
            let items = (next() % 3) as usize;
            let ops = [0u64, 1, 2, 3, 4, 5, 6, 0x10, 0x11, 0x12, 0x110, (-12i64) as u64, (-18i64) as u64, 0];
            let mut op = ops[(next() % ops.len() as u64) as usize];
            if label == -12 && op & 0xffff == 1 {
                // ex_regs on its own threads with random IPs is suicide,
                // not an attack on rtcr
                op = 3;
            }
            cpu.utcb().mr[0] = op;
            for i in 1..words {
                let v = next();
                cpu.utcb().mr[i] = if v & 1 == 0 { (v % 0x40) << 12 } else { v };
            }
            for k in 0..items {
                let ctl = 8 | (next() & 0x23);
                let fp =
                    l4_sys::Fpage::obj(CapIdx(next() % 0x40), 0, l4_sys::CapRights::from_bits_truncate(next() & 0xf));
                let fp = if next() % 4 == 0 { l4_sys::Fpage(next()) } else { fp };
                cpu.utcb().mr[words + 2 * k] = ctl;
                cpu.utcb().mr[words + 2 * k + 1] = fp.0;
            }
            // sometimes a receive buffer, sometimes garbage
            let br = next();
            cpu.utcb().br[0] = if br % 3 == 0 { l4_sys::item::rcv_single_cap(CapIdx(0x40 + br % 8)) } else { br & !1 };
            let state = next();
            let tag = MsgTag::new(label, words, items, TagFlags::empty());
            let _ = sys!(
                cpu,
                ipc::call(cpu, CapIdx(slot), tag, TimeoutPair::new(Timeout::from_us(100), Timeout::from_us(100)))
            );
            // the PRNG moves on only after the call (the replay rule)
            cpu.set_r(0, state);
            let n = cpu.load_u64(DATA)?;
            cpu.store_u64(DATA, n + 1)?;
            Ok(())
        }
    }
    Arc::new(H)
}

#[test]
fn a_hostile_child_gets_nothing_of_rtcrs() {
    let mut m = model(Arch::Amd64, hostile());
    let mut r = m.root();
    let mut env = ModelEnv(&mut r);
    let mut sp = spec("hostile");
    sp.max_objects = 16;
    let mut sup = Supervisor::spawn(&mut env, sp).unwrap();
    let boot = env.0.model().boot_objects();
    let mut forbidden = root_objects(env.0.model());
    forbidden.extend([boot.sigma0_task, boot.sigma0_thread]);
    let mut rounds = 0;
    let mut crashes = 0;
    let mut served = 0;
    loop {
        let out = sup.serve(&mut env, 1, Timeout::from_us(1000)).expect("rtcr never fails on a child's request");
        if let ServeOutcome::Crash { thread, code } = out {
            if std::env::var_os("HOSTILE_DEBUG").is_some() {
                eprintln!("crash: thread {thread} code {code:#x} after {} requests", sup.served);
            }
            // a random request may make the child fault (e.g. a page it may
            // not touch): that is the child's problem; restart it
            crashes += 1;
            served += sup.served;
            let old = sup;
            old.destroy(&mut env).unwrap();
            sup = Supervisor::spawn(&mut env, spec("hostile")).unwrap();
        }
        rounds += 1;
        if rounds % 300 == 0 {
            // a hostile child soon gives away its own capabilities (it may):
            // start a fresh one now and then so rtcr keeps being attacked
            served += sup.served;
            let old = sup;
            old.destroy(&mut env).unwrap();
            sup = Supervisor::spawn(&mut env, spec("hostile")).unwrap();
        }
        // capabilities: only objects rtcr holds for this child; memory:
        // only frames rtcr gave it (plus the KIP, which is public)
        if let Err(e) = check_child_spaces(env.0.model(), &sup, &forbidden) {
            panic!("round {rounds}: {e}");
        }
        if rounds >= 6000 {
            break;
        }
    }
    let mm = env.0.model();
    let child = mm.object_at(boot.root_task, sup.child_task().idx().0).unwrap();
    let made = u64::from_le_bytes(mm.peek(child, DATA, 8).unwrap_or(vec![0; 8]).try_into().unwrap());
    served += sup.served;
    eprintln!("hostile child: {rounds} rounds, {served} requests served, {crashes} child crashes, the last child made {made} requests");
    assert!(served > 1000, "enough requests reached rtcr: {served}");
}

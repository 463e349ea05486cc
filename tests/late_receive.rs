//! A receive that completes after a cut, whose thread rtcr does not see stop
//! before the settle time is over. A cut waits `SETTLE_US` for the threads
//! blocked in a kernel call at it; one that is still blocked then is
//! cancelled. But the call may have completed meanwhile without its thread
//! having had the CPU to stop (here: an IRQ delivered to a waiter that a
//! busier thread of a higher priority keeps off the CPU): the cancel then
//! finds it back from its receive, with a message sent after the cut. The
//! image must not hold that message (its sender is recorded before it sent
//! it, and sends it again after a restore): the receive is recorded as not
//! yet done, as for any receive that ends after the cut.
//!
//! As rtcr-l4-suite on the kernel: a trigger thread T counts a trigger,
//! triggers an IRQ bound to the waiter W, and waits for the delivery; W
//! counts deliveries and a delivery beyond the triggers as BAD.

use rtcr_sim::*;

use fiasco_model::{sys, Cpu, Trap};
use l4_sys::cap::{kind, Cap, CapIdx};
use l4_sys::exc::Arch;
use l4_sys::scheduler::{self, SchedParam};
use l4_sys::thread::{self, Control, ExRegsFlags};
use l4_sys::{factory, ipc, irq, Timeout, TimeoutPair};
use rtcr_core::supervisor::ServeOutcome;
use rtcr_core::Supervisor;
use std::sync::Arc;

const F: Cap<kind::Factory> = Cap::new(CapIdx(2));
const TASK: Cap<kind::Task> = Cap::new(CapIdx(1));
const SCHED: Cap<kind::Scheduler> = Cap::new(CapIdx(7));
const W: CapIdx = CapIdx(0x10);
const T: CapIdx = CapIdx(0x11);
const IRQ: CapIdx = CapIdx(0x30);
const LABEL: u64 = 0x1010;

/// Triggers counted (by T, before each trigger).
const SENT: u64 = DATA;
/// Deliveries counted (by W).
const DELIVERED: u64 = DATA + 8;
/// Deliveries beyond the triggers.
const BAD: u64 = DATA + 16;
/// 1 while T sleeps between two triggers.
const SLEEPING: u64 = DATA + 24;
/// T's sleep between triggers, and its work after each (µs; the work is
/// longer than a cut's settle time, the sleep shorter).
const SLEEP_US: u64 = 6_000;
const WORK_US: u64 = 12_000;

fn start_flags(cpu: &Cpu<'_>) -> ExRegsFlags {
    match cpu.arch() {
        Arch::Amd64 => ExRegsFlags::empty(),
        Arch::Arm64 => ExRegsFlags::ARM64_SET_EL_EL0,
    }
}

/// Main: W at priority 9, T at 12 (main is 10), the IRQ bound to W; then
/// it waits for ever.
fn main_prog() -> Arc<dyn fiasco_model::Program> {
    struct M;
    impl fiasco_model::Program for M {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            let s = cpu.state();
            let fl = start_flags(cpu);
            match s {
                0 | 4 => {
                    let _ = sys!(cpu, factory::create_thread(cpu, F, [W, T][s as usize / 4]));
                }
                1 | 5 => {
                    let k = s / 4;
                    let c = Control::new()
                        .pager(CapIdx(4))
                        .exc_handler(CapIdx(4))
                        .bind(0xB300_0000 + 0x400 * (k + 1), TASK);
                    let _ = sys!(cpu, thread::control(cpu, Cap::new([W, T][k as usize]), &c));
                }
                2 | 6 => {
                    let k = s as usize / 4;
                    let p = SchedParam::prio([9, 12][k]);
                    let _ = sys!(cpu, scheduler::run_thread(cpu, SCHED, Cap::new([W, T][k]), &p));
                }
                3 => {
                    let _ = sys!(cpu, factory::create_irq(cpu, F, IRQ));
                }
                7 => {
                    let _ = sys!(cpu, irq::bind_thread(cpu, Cap::<kind::Irq>::new(IRQ), Cap::new(W), LABEL));
                }
                8 | 9 => {
                    let k = s - 8;
                    let entry = CODE + 0x1000 * (k + 1);
                    let sp = STACK_TOP - 0x1000 * (k + 1);
                    let _ = sys!(cpu, thread::ex_regs(cpu, Cap::new([W, T][k as usize]), entry, sp, fl));
                }
                _ => {
                    let _ = sys!(cpu, ipc::sleep(cpu, Timeout::NEVER));
                    return Ok(());
                }
            }
            cpu.goto(s + 1);
            Ok(())
        }
    }
    Arc::new(M)
}

/// W: waits for the IRQ, counts it; one beyond the triggers is BAD.
fn waiter() -> Arc<dyn fiasco_model::Program> {
    struct P;
    impl fiasco_model::Program for P {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            if let Ok(g) = sys!(cpu, ipc::wait(cpu, TimeoutPair::NEVER)) {
                if g.label & !3 == LABEL {
                    let (sent, got) = (cpu.load_u64(SENT)?, cpu.load_u64(DELIVERED)?);
                    if got >= sent {
                        let b = cpu.load_u64(BAD)?;
                        cpu.store_u64(BAD, b + 1)?;
                    }
                    cpu.store_u64(DELIVERED, got + 1)?;
                }
            }
            Ok(())
        }
    }
    Arc::new(P)
}

/// T: counts a trigger, triggers, works [`WORK_US`], waits for the
/// delivery, sleeps [`SLEEP_US`], and again.
fn trigger() -> Arc<dyn fiasco_model::Program> {
    struct P;
    impl fiasco_model::Program for P {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            match cpu.state() {
                0 => {
                    let n = cpu.load_u64(SENT)?;
                    cpu.store_u64(SENT, n + 1)?;
                    cpu.goto(1);
                }
                1 => {
                    let _ = sys!(cpu, irq::trigger(cpu, Cap::<kind::Irq>::new(IRQ)));
                    let now = cpu.clock_us();
                    cpu.set_r(0, now);
                    cpu.goto(2);
                }
                2 => {
                    // work: keeps the CPU (W has a lower priority)
                    if cpu.clock_us() >= cpu.r(0) + WORK_US {
                        cpu.goto(3);
                    }
                }
                3 => {
                    if cpu.load_u64(DELIVERED)? < cpu.load_u64(SENT)? {
                        let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(100)));
                    } else {
                        cpu.store_u64(SLEEPING, 1)?;
                        cpu.goto(4);
                    }
                }
                _ => {
                    let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(SLEEP_US)));
                    cpu.store_u64(SLEEPING, 0)?;
                    cpu.goto(0);
                }
            }
            Ok(())
        }
    }
    Arc::new(P)
}

fn child_model(arch: Arch) -> fiasco_model::Model {
    let mut m = model(arch, main_prog());
    m.register_program(CODE + 0x1000, waiter());
    m.register_program(CODE + 0x2000, trigger());
    m
}

/// A word of the child's memory; 0 while its page is not mapped yet.
fn word(m: &fiasco_model::Model, sup: &Supervisor, a: u64) -> u64 {
    m.peek(child_obj(m, sup), a, 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()))
}

fn run(arch: Arch) {
    let mut m = child_model(arch);
    let mut images = Vec::new();
    {
        let mut r = m.root();
        let mut env = ModelEnv(&mut r);
        let mut sup = Supervisor::spawn(&mut env, spec("late")).unwrap();
        // checkpoints while T sleeps between triggers (W waits): T's sleep
        // ends within the settle time, its trigger comes then, and its work
        // keeps W from stopping before the settle time is over
        while images.len() < 3 {
            let out = sup.serve(&mut env, 1, Timeout::from_us(100)).unwrap();
            assert!(!matches!(out, ServeOutcome::Crash { .. }), "{arch:?}: {out:?}");
            let m = env.0.model();
            if word(m, &sup, SLEEPING) == 1 && word(m, &sup, SENT) > images.len() as u64 * 2 + 2 {
                let (cp, st) = sup.checkpoint(&mut env).unwrap();
                images.push(rtcr_core::encode_image(arch, st.seq, &cp).unwrap());
            }
        }
        let t0 = env.0.model().clock_us();
        while env.0.model().clock_us() < t0 + 5 * (WORK_US + SLEEP_US) {
            sup.serve(&mut env, 100, Timeout::from_us(2_000)).unwrap();
        }
        let m = env.0.model();
        assert!(word(m, &sup, DELIVERED) > 8, "{arch:?}: IRQs delivered live");
        assert_eq!(word(m, &sup, BAD), 0, "{arch:?}: live, every trigger delivered once");
    }
    for (i, bytes) in images.iter().enumerate() {
        let (meta, cp) = rtcr_image::decode(bytes).unwrap();
        let mut m2 = child_model(arch);
        let mut r = m2.root();
        let mut env = ModelEnv(&mut r);
        let mut sup = Supervisor::restore(&mut env, spec("x"), &cp, meta.sequence).unwrap();
        let at = word(env.0.model(), &sup, DELIVERED);
        let t0 = env.0.model().clock_us();
        // five rounds of T's
        while env.0.model().clock_us() < t0 + 5 * (WORK_US + SLEEP_US) {
            let out = sup.serve(&mut env, 100, Timeout::from_us(2_000)).unwrap();
            assert!(!matches!(out, ServeOutcome::Crash { .. }), "{arch:?}: {out:?}");
        }
        let m = env.0.model();
        assert!(word(m, &sup, DELIVERED) >= at + 4, "{arch:?}, image {i}: IRQs delivered after the restore");
        assert_eq!(word(m, &sup, BAD), 0, "{arch:?}, image {i}: after the restore, a trigger delivered twice");
    }
}

#[test]
fn a_receive_done_after_the_cut_is_not_in_the_image_even_when_its_stop_comes_late_amd64() {
    run(Arch::Amd64);
}

#[test]
fn a_receive_done_after_the_cut_is_not_in_the_image_even_when_its_stop_comes_late_arm64() {
    run(Arch::Arm64);
}

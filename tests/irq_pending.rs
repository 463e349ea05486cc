//! An IRQ triggered while its thread is busy is pending at the cut. The
//! checkpoint must neither lose it for the running child (the kernel tells
//! "pending" only by dropping it on detach) nor for a restore: the record
//! says "pending", and the restored IRQ is raised again.

use rtcr_sim::*;

use fiasco_model::{sys, Cpu, Trap};
use l4_sys::cap::{kind, Cap, CapIdx};
use l4_sys::exc::Arch;
use l4_sys::scheduler::SchedParam;
use l4_sys::thread::{Control, ExRegsFlags};
use l4_sys::{factory, ipc, irq, scheduler, thread, Timeout, TimeoutPair};
use rtcr_core::supervisor::ServeOutcome;
use rtcr_core::Supervisor;
use rtcr_image::record::ObjectRecord;
use std::sync::Arc;

const F: Cap<kind::Factory> = Cap::new(CapIdx(2));
const WAITER: CapIdx = CapIdx(0x10);
const IRQ: CapIdx = CapIdx(0x30);
const LABEL: u64 = 0x1040;
/// Deliveries the waiter received.
const GOT: u64 = DATA + 0x40;
/// Set by the test: the waiter may start waiting.
const GO: u64 = DATA + 0x48;

fn flags(cpu: &Cpu<'_>) -> ExRegsFlags {
    match cpu.arch() {
        Arch::Amd64 => ExRegsFlags::empty(),
        Arch::Arm64 => ExRegsFlags::ARM64_SET_EL_EL0,
    }
}

/// Main: a waiter thread, an IRQ bound to it, one trigger, then sleeps.
struct Main;
impl fiasco_model::Program for Main {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        let s = cpu.state();
        match s {
            0 => {
                let _ = sys!(cpu, factory::create_thread(cpu, F, WAITER));
            }
            1 => {
                let c = Control::new().pager(CapIdx(4)).exc_handler(CapIdx(4)).bind(0xB300_0400, Cap::new(CapIdx(1)));
                let _ = sys!(cpu, thread::control(cpu, Cap::new(WAITER), &c));
            }
            2 => {
                let _ = sys!(cpu, factory::create_irq(cpu, F, IRQ));
            }
            3 => {
                let _ = sys!(cpu, irq::bind_thread(cpu, Cap::<kind::Irq>::new(IRQ), Cap::new(WAITER), LABEL));
            }
            4 => {
                let p = SchedParam::prio(12);
                let _ = sys!(cpu, scheduler::run_thread(cpu, Cap::new(CapIdx(7)), Cap::new(WAITER), &p));
            }
            5 => {
                let fl = flags(cpu);
                let _ = sys!(cpu, thread::ex_regs(cpu, Cap::new(WAITER), CODE + 0x1000, STACK_TOP - 0x1000, fl));
            }
            6 => {
                let _ = sys!(cpu, irq::trigger(cpu, Cap::<kind::Irq>::new(IRQ)));
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

/// The waiter: busy (sleeping in short naps) until GO, then takes IRQs.
struct Waiter;
impl fiasco_model::Program for Waiter {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        match cpu.state() {
            0 => {
                if cpu.load_u64(GO)? == 0 {
                    let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(200)));
                } else {
                    cpu.goto(1);
                }
            }
            _ => {
                let got = sys!(cpu, ipc::wait(cpu, TimeoutPair::NEVER));
                if matches!(got, Ok(g) if g.label & !3 == LABEL) {
                    let n = cpu.load_u64(GOT)?;
                    cpu.store_u64(GOT, n + 1)?;
                }
            }
        }
        Ok(())
    }
}

fn model_with_both(arch: Arch) -> fiasco_model::Model {
    let mut m = model(arch, Arc::new(Main));
    m.register_program(CODE + 0x1000, Arc::new(Waiter));
    m
}

fn serve(env: &mut ModelEnv<'_, '_>, sup: &mut Supervisor, rounds: usize) {
    for _ in 0..rounds {
        let out = sup.serve(env, 50, Timeout::from_us(500)).unwrap();
        assert!(!matches!(out, ServeOutcome::Crash { .. }), "{out:?}");
    }
}

#[test]
fn a_pending_irq_survives_the_checkpoint_and_the_restore() {
    for arch in [Arch::Amd64, Arch::Arm64] {
        let mut m = model_with_both(arch);
        let bytes;
        {
            let mut r = m.root();
            let mut env = ModelEnv(&mut r);
            let mut sup = Supervisor::spawn(&mut env, spec("pending")).unwrap();
            serve(&mut env, &mut sup, 10);
            assert_eq!(child_u64(env.0.model(), &sup, GOT), 0, "{arch:?}: the waiter is still busy");
            let (cp, st) = sup.checkpoint(&mut env).unwrap();
            let pending: Vec<bool> = cp
                .objects
                .iter()
                .filter_map(|o| if let ObjectRecord::Irq { pending, .. } = o { Some(*pending) } else { None })
                .collect();
            assert_eq!(pending, [true], "{arch:?}: the record says the trigger is still to be delivered");
            bytes = rtcr_core::encode_image(arch, st.seq, &cp).unwrap();
            // the running child did not lose it to the checkpoint's detach
            let ct = child_obj(env.0.model(), &sup);
            env.0.model().poke(ct, GO, &1u64.to_le_bytes());
            serve(&mut env, &mut sup, 10);
            assert_eq!(child_u64(env.0.model(), &sup, GOT), 1, "{arch:?}: delivered once to the live child");
        }
        // and a restore raises it again, once
        let (meta, cp) = rtcr_image::decode(&bytes).unwrap();
        let mut m2 = model_with_both(arch);
        let mut r = m2.root();
        let mut env = ModelEnv(&mut r);
        let mut sup = Supervisor::restore(&mut env, spec("x"), &cp, meta.sequence).unwrap();
        let ct = child_obj(env.0.model(), &sup);
        env.0.model().poke(ct, GO, &1u64.to_le_bytes());
        serve(&mut env, &mut sup, 10);
        assert_eq!(child_u64(env.0.model(), &sup, GOT), 1, "{arch:?}: delivered once after the restore");
    }
}

//! Pager (sigma0-protocol) memory a child receives into a window of its own
//! while a checkpoint is being taken. A cut waits up to `SETTLE_US` for the
//! threads that were blocked in a kernel call at it, and meanwhile the
//! threads it already saved run on and are served: a request for memory
//! answered then lands where the caller's window says, as at any other
//! time, and the images must hold it there.

use rtcr_sim::*;

use fiasco_model::{sys, Cpu, Trap};
use l4_sys::cap::{kind, Cap, CapIdx};
use l4_sys::exc::Arch;
use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::scheduler::{self, SchedParam};
use l4_sys::thread::{self, Control, ExRegsFlags};
use l4_sys::{factory, ipc, sigma0, Timeout};
use rtcr_core::supervisor::ServeOutcome;
use rtcr_core::Supervisor;
use std::sync::Arc;

const F: Cap<kind::Factory> = Cap::new(CapIdx(2));
const TASK: Cap<kind::Task> = Cap::new(CapIdx(1));
const PAGER: Cap<kind::Sigma0> = Cap::new(CapIdx(4));
const SCHED: Cap<kind::Scheduler> = Cap::new(CapIdx(7));
const T1: CapIdx = CapIdx(0x10);

/// Where the child receives its pages, one 4 KiB window each.
const RAM: u64 = 0x0300_0000;
const PAGES: u64 = 96;
/// Pages received so far (main's memory).
const GOT: u64 = DATA;
/// Pages whose marker was wrong when main checked them.
const BAD: u64 = DATA + 8;
/// Full passes of main's check over all its pages.
const CHECKS: u64 = DATA + 16;

/// The marker main writes into page `i` of its windows.
fn marker(i: u64) -> u64 {
    0x5eed_0000_0000 + i
}

/// Main: starts T1, which blocks in a receive for ever (so every cut waits
/// for it), then asks its pager for one page at a time into a one-page
/// window of its own at RAM + 4 KiB × i and writes the page's marker there;
/// then checks every page's marker again and again, counting the passes and
/// the wrong markers.
fn main_prog() -> Arc<dyn fiasco_model::Program> {
    struct M;
    impl fiasco_model::Program for M {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            let fl = match cpu.arch() {
                Arch::Amd64 => ExRegsFlags::empty(),
                Arch::Arm64 => ExRegsFlags::ARM64_SET_EL_EL0,
            };
            match cpu.state() {
                0 => {
                    let _ = sys!(cpu, factory::create_thread(cpu, F, T1));
                    cpu.goto(1);
                }
                1 => {
                    let c = Control::new().pager(CapIdx(4)).exc_handler(CapIdx(4)).bind(0xB300_0400, TASK);
                    let _ = sys!(cpu, thread::control(cpu, Cap::new(T1), &c));
                    cpu.goto(2);
                }
                2 => {
                    let _ = sys!(cpu, scheduler::run_thread(cpu, SCHED, Cap::new(T1), &SchedParam::prio(11)));
                    cpu.goto(3);
                }
                3 => {
                    let _ = sys!(cpu, thread::ex_regs(cpu, Cap::new(T1), CODE + 0x1000, STACK_TOP - 0x1000, fl));
                    cpu.goto(4);
                }
                4 => {
                    let i = cpu.load_u64(GOT)?;
                    if i == PAGES {
                        cpu.set_r(1, 0);
                        cpu.goto(6);
                        return Ok(());
                    }
                    let w = Fpage::mem(RAM + 0x1000 * i, 12, MemRights::empty());
                    if sys!(cpu, sigma0::map_any(cpu, PAGER, 12, w)).is_err() {
                        return Err(Trap::Exception(6));
                    }
                    cpu.goto(5);
                }
                5 => {
                    let i = cpu.load_u64(GOT)?;
                    cpu.store_u64(RAM + 0x1000 * i, marker(i))?;
                    cpu.store_u64(GOT, i + 1)?;
                    cpu.goto(4);
                }
                6 => {
                    let i = cpu.r(1);
                    if i < PAGES {
                        if cpu.load_u64(RAM + 0x1000 * i)? != marker(i) {
                            let b = cpu.load_u64(BAD)?;
                            cpu.store_u64(BAD, b + 1)?;
                        }
                        cpu.set_r(1, i + 1);
                    } else {
                        let n = cpu.load_u64(CHECKS)?;
                        cpu.store_u64(CHECKS, n + 1)?;
                        cpu.goto(7);
                    }
                }
                _ => {
                    let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(200)));
                    cpu.set_r(1, 0);
                    cpu.goto(6);
                }
            }
            Ok(())
        }
    }
    Arc::new(M)
}

/// T1: a receive that never ends.
fn blocked() -> Arc<dyn fiasco_model::Program> {
    struct B;
    impl fiasco_model::Program for B {
        fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
            let _ = sys!(cpu, ipc::sleep(cpu, Timeout::NEVER));
            Ok(())
        }
    }
    Arc::new(B)
}

/// A word of the child's memory; 0 while its page is not mapped yet.
fn word(m: &fiasco_model::Model, sup: &Supervisor, a: u64) -> u64 {
    m.peek(child_obj(m, sup), a, 8).map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()))
}

fn child_model(arch: Arch) -> fiasco_model::Model {
    let mut m = model(arch, main_prog());
    m.register_program(CODE + 0x1000, blocked());
    m
}

fn run(arch: Arch) {
    let mut m = child_model(arch);
    let bytes;
    let seq;
    {
        let mut r = m.root();
        let mut env = ModelEnv(&mut r);
        let mut sup = Supervisor::spawn(&mut env, spec("s0cut")).unwrap();
        // checkpoints one after the other while main gets its pages: each
        // cut waits for T1, and main asks for pages meanwhile
        let mut cuts = 0;
        while word(env.0.model(), &sup, GOT) < PAGES {
            let out = sup.serve(&mut env, 3, Timeout::from_us(100)).unwrap();
            assert!(!matches!(out, ServeOutcome::Crash { .. }), "{arch:?}: {out:?}");
            sup.checkpoint(&mut env).unwrap();
            cuts += 1;
            assert!(cuts < 10 * PAGES, "{arch:?}: main does not get its pages");
        }
        let out = sup.serve(&mut env, 100, Timeout::from_us(2000)).unwrap();
        assert!(!matches!(out, ServeOutcome::Crash { .. }), "{arch:?}: {out:?}");
        assert!(word(env.0.model(), &sup, CHECKS) > 0, "{arch:?}: main checked its pages");
        assert_eq!(word(env.0.model(), &sup, BAD), 0, "{arch:?}: live, every page holds its marker");
        let (cp, st) = sup.checkpoint(&mut env).unwrap();
        // the image has every page where main has it
        for i in 0..PAGES {
            let a = RAM + 0x1000 * i;
            let p = cp.pages.iter().find(|p| p.vaddr == a);
            let got = p.map(|p| u64::from_le_bytes(p.data[..8].try_into().unwrap()));
            assert_eq!(got, Some(marker(i)), "{arch:?}: page {i} ({a:#x}) in the image after {cuts} cuts");
        }
        seq = st.seq;
        bytes = rtcr_core::encode_image(arch, seq, &cp).unwrap();
        eprintln!("{arch:?}: {cuts} cuts while main got {PAGES} pages");
    }
    // a restore from it: main checks its pages on
    let (meta, cp) = rtcr_image::decode(&bytes).unwrap();
    let mut m2 = child_model(arch);
    let mut r = m2.root();
    let mut env = ModelEnv(&mut r);
    let mut sup = Supervisor::restore(&mut env, spec("x"), &cp, meta.sequence).unwrap();
    let checks = word(env.0.model(), &sup, CHECKS);
    for _ in 0..10 {
        let out = sup.serve(&mut env, 100, Timeout::from_us(500)).unwrap();
        assert!(!matches!(out, ServeOutcome::Crash { .. }), "{arch:?}: the restored child: {out:?}");
    }
    assert!(word(env.0.model(), &sup, CHECKS) > checks, "{arch:?}: the restored child checks on");
    assert_eq!(word(env.0.model(), &sup, BAD), 0, "{arch:?}: restored, every page holds its marker");
}

#[test]
fn pager_memory_received_during_a_cut_is_where_the_window_put_it_amd64() {
    run(Arch::Amd64);
}

#[test]
fn pager_memory_received_during_a_cut_is_where_the_window_put_it_arm64() {
    run(Arch::Arm64);
}

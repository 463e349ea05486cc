//! The scenario child (the research's experiment, extended), as model
//! programs at CODE (main), CODE+0x1000 (entrypoint), CODE+0x2000 (client),
//! CODE+0x3000 (IRQ waiter). It uses only the child contract: slots 1–7.
//!
//! Memory (page DATA):
//!   +0x00 counter       +0x08 mirror (3 × counter, checked every step)
//!   +0x10 crash-at (the counter value at which main crashes; 0 = never)
//!   +0x18 last reply main got from the entrypoint
//!   +0x100.. per gate label (0x100, 0x200, 0x300): calls the entrypoint served
//!   +0x200.. per IRQ label: deliveries (0x1010, 0x1030 to the entrypoint,
//!            0x1020 to the IRQ waiter)
//!   +0x300 client's call count

use fiasco_model::{sys, Cpu, Program, Trap};
use l4_sys::cap::{kind, Cap, CapIdx};
use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::msgtag::{MsgTag, TagFlags};
use l4_sys::scheduler::SchedParam;
use l4_sys::thread::{Control, ExRegsFlags};
use l4_sys::{factory, icu, ipc, irq, scheduler, thread, Kernel, Timeout, TimeoutPair};

use crate::{CODE, DATA};

/// The child's UTCB area.
pub const UTCB: u64 = 0xB300_0000;
/// Slot of the entrypoint thread.
pub const T1: CapIdx = CapIdx(0x10);
/// Slot of the client thread.
pub const T2: CapIdx = CapIdx(0x11);
/// Slot of the IRQ waiter.
pub const T3: CapIdx = CapIdx(0x12);
/// The entrypoint's gates: slot and label.
pub const GATES: [(CapIdx, u64); 3] = [(CapIdx(0x20), 0x100), (CapIdx(0x21), 0x200), (CapIdx(0x22), 0x300)];
/// The IRQs: slot and label.
pub const IRQS: [(CapIdx, u64); 3] = [(CapIdx(0x30), 0x1010), (CapIdx(0x31), 0x1020), (CapIdx(0x32), 0x1030)];
/// The hardware line of the third IRQ.
pub const HW_LINE: u64 = 5;
/// The counter.
pub const COUNTER: u64 = DATA;
/// Three times the counter (main checks it).
pub const MIRROR: u64 = DATA + 8;
/// Main crashes when the counter reaches this (0: never).
pub const CRASH_AT: u64 = DATA + 0x10;

const F: Cap<kind::Factory> = Cap::new(CapIdx(2));
const SCHED: Cap<kind::Scheduler> = Cap::new(CapIdx(7));
const ICU: Cap<kind::Icu> = Cap::new(CapIdx(6));
const TASK: Cap<kind::Task> = Cap::new(CapIdx(1));

fn flags(cpu: &Cpu<'_>) -> ExRegsFlags {
    match cpu.arch() {
        l4_sys::exc::Arch::Amd64 => ExRegsFlags::empty(),
        l4_sys::exc::Arch::Arm64 => ExRegsFlags::ARM64_SET_EL_EL0,
    }
}

/// Address of a per-label counter.
pub fn label_slot(label: u64) -> u64 {
    match label {
        0x100 | 0x200 | 0x300 => DATA + 0x100 + (label >> 8) * 8,
        0x1010 | 0x1020 | 0x1030 => DATA + 0x200 + ((label >> 4) & 0xf) * 8,
        _ => DATA + 0x3f8,
    }
}

fn bump(cpu: &mut Cpu<'_>, a: u64) -> Result<(), Trap> {
    let v = cpu.load_u64(a)?;
    cpu.store_u64(a, v + 1)?;
    Ok(())
}

/// The main thread: sets everything up, then counts.
pub struct Main;
impl Program for Main {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        let s = cpu.state();
        let fl = flags(cpu);
        match s {
            0 | 2 | 4 => {
                let slot = [T1, T2, T3][(s / 2) as usize];
                let _ = sys!(cpu, factory::create_thread(cpu, F, slot));
                cpu.goto(s + 1);
            }
            1 | 3 | 5 => {
                let k = s / 2;
                let slot = [T1, T2, T3][k as usize];
                let c = Control::new().pager(CapIdx(4)).exc_handler(CapIdx(4)).bind(UTCB + 0x400 * (k + 1), TASK);
                let _ = sys!(cpu, thread::control(cpu, Cap::new(slot), &c));
                cpu.goto(s + 1);
            }
            6..=8 => {
                let (g, l) = GATES[(s - 6) as usize];
                let _ = sys!(cpu, factory::create_gate(cpu, F, g, Some((Cap::new(T1), l))));
                cpu.goto(s + 1);
            }
            9..=11 => {
                let (q, _) = IRQS[(s - 9) as usize];
                let _ = sys!(cpu, factory::create_irq(cpu, F, q));
                cpu.goto(s + 1);
            }
            12..=14 => {
                let (q, l) = IRQS[(s - 12) as usize];
                let to = if s == 13 { T3 } else { T1 };
                let _ = sys!(cpu, irq::bind_thread(cpu, Cap::<kind::Irq>::new(q), Cap::new(to), l));
                cpu.goto(s + 1);
            }
            15 => {
                let _ = sys!(cpu, icu::bind(cpu, ICU, HW_LINE, Cap::new(IRQS[2].0)));
                cpu.goto(16);
            }
            16 | 18 | 20 => {
                let k = ((s - 16) / 2) as usize;
                let prio = [12, 11, 12][k];
                let _ =
                    sys!(cpu, scheduler::run_thread(cpu, SCHED, Cap::new([T1, T2, T3][k]), &SchedParam::prio(prio)));
                cpu.goto(s + 1);
            }
            17 | 19 | 21 => {
                let k = (s - 17) / 2;
                let entry = CODE + 0x1000 * (k + 1);
                let sp = crate::STACK_TOP - 0x1000 * (k + 1);
                let _ = sys!(cpu, thread::ex_regs(cpu, Cap::new([T1, T2, T3][k as usize]), entry, sp, fl));
                cpu.goto(s + 1);
            }
            22 => {
                // count, and check what was counted
                let n = cpu.load_u64(COUNTER)?;
                if cpu.load_u64(MIRROR)? != n * 3 {
                    return Err(cpu.crash());
                }
                let crash_at = cpu.load_u64(CRASH_AT)?;
                if crash_at != 0 && n + 1 >= crash_at {
                    return Err(cpu.crash());
                }
                cpu.store_u64(COUNTER, n + 1)?;
                cpu.store_u64(MIRROR, (n + 1) * 3)?;
                if (n + 1) % 64 == 0 {
                    cpu.set_r(0, n + 1);
                    cpu.goto(23);
                }
            }
            23 => {
                let n = cpu.r(0);
                cpu.utcb().mr[0] = n;
                let r =
                    sys!(cpu, ipc::call(cpu, GATES[0].0, MsgTag::new(0, 1, 0, TagFlags::empty()), TimeoutPair::NEVER));
                if r.is_ok() {
                    let w = cpu.utcb().mr[0];
                    cpu.store_u64(DATA + 0x18, w)?;
                }
                cpu.goto(22);
            }
            _ => return Err(cpu.crash()),
        }
        Ok(())
    }
}

/// The entrypoint: serves the three gates and two IRQs.
pub struct Entrypoint;

/// What the entrypoint received: label in r0, first word in r1, then to
/// state 2 to handle it; after an error, back to an open wait.
fn took(cpu: &mut Cpu<'_>, got: Result<ipc::Received, l4_sys::Error>) {
    match got {
        Ok(g) => {
            let w = cpu.utcb().mr[0];
            cpu.set_r(0, g.label);
            cpu.set_r(1, w);
            cpu.goto(2);
        }
        Err(_) => cpu.goto(0),
    }
}
impl Program for Entrypoint {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        loop {
            match cpu.state() {
                0 => {
                    let g = sys!(cpu, ipc::wait(cpu, TimeoutPair::NEVER));
                    took(cpu, g);
                }
                1 => {
                    let w = cpu.r(1);
                    cpu.utcb().mr[0] = w + 1000;
                    let g = sys!(
                        cpu,
                        ipc::reply_and_wait(cpu, MsgTag::new(0, 1, 0, TagFlags::empty()), 0, TimeoutPair::NEVER)
                    );
                    took(cpu, g);
                }
                2 => {
                    let l = cpu.r(0) & !3;
                    bump(cpu, label_slot(l))?;
                    match l {
                        0x100 | 0x200 | 0x300 => cpu.goto(1),
                        0x1030 => cpu.goto(3),
                        _ => cpu.goto(0),
                    }
                    return Ok(());
                }
                _ => {
                    let _ = sys!(cpu, irq::unmask(cpu, Cap::<kind::Irq>::new(IRQS[2].0)));
                    cpu.goto(0);
                }
            }
        }
    }
}

/// The client: triggers two IRQs, calls two gates, asks rtcr's scheduler.
pub struct Client;
impl Program for Client {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        match cpu.state() {
            0 => {
                let _ = sys!(cpu, irq::trigger(cpu, Cap::<kind::Irq>::new(IRQS[0].0)));
                cpu.goto(1);
            }
            1 | 2 => {
                let g = GATES[cpu.state() as usize].0;
                cpu.utcb().mr[0] = cpu.r(2);
                let _ = sys!(cpu, ipc::call(cpu, g, MsgTag::new(0, 1, 0, TagFlags::empty()), TimeoutPair::NEVER));
                cpu.set_r(2, cpu.r(2) + 1);
                bump(cpu, DATA + 0x300)?;
                cpu.goto(cpu.state() + 1);
            }
            3 => {
                let _ = sys!(cpu, scheduler::info(cpu, SCHED, scheduler::CpuSet::ALL));
                cpu.goto(4);
            }
            4 => {
                let _ = sys!(cpu, irq::trigger(cpu, Cap::<kind::Irq>::new(IRQS[1].0)));
                cpu.goto(5);
            }
            _ => {
                let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(300)));
                cpu.goto(0);
            }
        }
        Ok(())
    }
}

/// Waits for IRQ 0x1020.
pub struct IrqWaiter;
impl Program for IrqWaiter {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        let g = sys!(cpu, ipc::wait(cpu, TimeoutPair::NEVER));
        if let Ok(g) = g {
            bump(cpu, label_slot(g.label & !3))?;
        }
        Ok(())
    }
}

/// Register the four programs.
pub fn register(m: &mut fiasco_model::Model) {
    use std::sync::Arc;
    m.register_program(CODE, Arc::new(Main));
    m.register_program(CODE + 0x1000, Arc::new(Entrypoint));
    m.register_program(CODE + 0x2000, Arc::new(Client));
    m.register_program(CODE + 0x3000, Arc::new(IrqWaiter));
    let _ = (Fpage::INVALID, MemRights::empty());
}

//! A model child whose kernel entries are bare `syscall` / `svc #0` with the
//! inputs in the ABI registers (rax tag, rdx dest|flags, rsi label, r8
//! timeout / x0–x3), as L4Re's own entry code makes them — not l4-sys's
//! restartable sequence. Its code pages hold the entry instruction just
//! before each state's return point and nothing of l4-sys's sequence, so
//! rtcr sees what it sees on the kernel with such a child.
//!
//! It checks every result itself and counts what rtcr must not disturb:
//!
//! * main (the client) calls a gate served by T1 with a sequence number;
//!   T1 checks each number arrives exactly once and in order, main checks
//!   the reply (number + 1000);
//! * T2 sleeps [`SLEEP_US`] in a loop and counts sleeps that end early or
//!   come back with anything but a timeout.
//!
//! * memory the way a program gets it from sigma0: the KIP and RAM pages,
//!   each received into a window of the child's own choosing
//!   ([`KIP_WINDOW`], [`RAM_WINDOW`], [`RAM16_WINDOW`]), not at the address
//!   the pager names; main keeps a ledger in them and checks it every call.
//!
//! Any unexpected IPC result counts in [`ERRORS`], a ledger mismatch in
//! [`LEDGER_BAD`].

use fiasco_model::{sys, Cpu, Program, Trap};
use l4_sys::cap::{kind, Cap, CapIdx};
use l4_sys::exc::Arch;
use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::msgtag::{MsgTag, TagFlags};
use l4_sys::scheduler::{self, SchedParam};
use l4_sys::thread::{self, Control, ExRegsFlags};
use l4_sys::{factory, ipc, sigma0, Kernel, Timeout, TimeoutPair};

use crate::{CODE, DATA, STACK_TOP};

/// The server thread's slot.
pub const T1: CapIdx = CapIdx(0x10);
/// The sleeper's slot.
pub const T2: CapIdx = CapIdx(0x11);
/// The gate T1 serves (label 0x100).
pub const GATE: CapIdx = CapIdx(0x20);
/// IPC results the child did not expect.
pub const ERRORS: u64 = DATA + 0x400;
/// Calls main completed (with a correct reply).
pub const CALLS: u64 = DATA + 0x408;
/// The last sequence number T1 served.
pub const SERVED: u64 = DATA + 0x410;
/// Sleeps T2 completed.
pub const SLEEPS: u64 = DATA + 0x418;
/// Sleeps that ended before [`SLEEP_US`].
pub const EARLY: u64 = DATA + 0x420;
/// Sleeps that took more than twice [`SLEEP_US`].
pub const LATE: u64 = DATA + 0x428;
/// Where the child receives the KIP (a one-page window).
pub const KIP_WINDOW: u64 = 0x0170_0000;
/// Where the child receives a 4 KiB RAM page (a one-page window).
pub const RAM_WINDOW: u64 = 0x0181_0000;
/// Where the child receives 16 KiB of RAM (a window of that size).
pub const RAM16_WINDOW: u64 = 0x0190_0000;
/// The ledger's count (main's memory): what the RAM windows must hold.
pub const LEDGER: u64 = DATA + 0x430;
/// Ledger checks that failed.
pub const LEDGER_BAD: u64 = DATA + 0x438;
/// How long T1 takes before it replies (µs; 0: it replies at once).
pub const SERVER_DELAY: u64 = DATA + 0x440;
/// Replies T1 could not send (its caller was not waiting any more).
pub const REPLY_FAILED: u64 = DATA + 0x448;
/// How long T2 sleeps (µs, model clock).
pub const SLEEP_US: u64 = 2_000;

const F: Cap<kind::Factory> = Cap::new(CapIdx(2));
const SCHED: Cap<kind::Scheduler> = Cap::new(CapIdx(7));
const TASK: Cap<kind::Task> = Cap::new(CapIdx(1));
const PAGER: Cap<kind::Sigma0> = Cap::new(CapIdx(4));
const UTCB: u64 = 0xB300_0000;

/// Model code for `pages` pages of this child on `arch`: each 32-byte state
/// holds a bare entry instruction (`syscall` / `svc #0`) ending where the
/// model puts the IP after a kernel call, and no other code rtcr knows.
pub fn code_pages(arch: Arch, pages: usize) -> Vec<u8> {
    let insn: &[u8] = match arch {
        Arch::Amd64 => &[0x0f, 0x05],
        Arch::Arm64 => &[0x01, 0x00, 0x00, 0xd4],
    };
    let end = 8 + arch.restart_len() as usize;
    let mut code = vec![0x90; pages * 4096];
    for block in code.chunks_mut(32) {
        block[end - insn.len()..end].copy_from_slice(insn);
    }
    code
}

fn bump(cpu: &mut Cpu<'_>, a: u64) -> Result<(), Trap> {
    let v = cpu.load_u64(a)?;
    cpu.store_u64(a, v + 1)?;
    Ok(())
}

fn start_flags(cpu: &Cpu<'_>) -> ExRegsFlags {
    match cpu.arch() {
        Arch::Amd64 => ExRegsFlags::empty(),
        Arch::Arm64 => ExRegsFlags::ARM64_SET_EL_EL0,
    }
}

/// Main: sets up T1, T2 and the gate, then calls the gate for ever.
pub struct Main;
impl Program for Main {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        cpu.bare_entry();
        let s = cpu.state();
        let fl = start_flags(cpu);
        match s {
            0 | 4 => {
                let k = s / 4;
                let _ = sys!(cpu, factory::create_thread(cpu, F, [T1, T2][k as usize]));
                cpu.goto(s + 1);
            }
            1 | 5 => {
                let k = s / 4;
                let c = Control::new().pager(CapIdx(4)).exc_handler(CapIdx(4)).bind(UTCB + 0x400 * (k + 1), TASK);
                let _ = sys!(cpu, thread::control(cpu, Cap::new([T1, T2][k as usize]), &c));
                cpu.goto(s + 1);
            }
            2 | 6 => {
                let k = s / 4;
                let p = SchedParam::prio([12, 11][k as usize]);
                let _ = sys!(cpu, scheduler::run_thread(cpu, SCHED, Cap::new([T1, T2][k as usize]), &p));
                cpu.goto(s + 1);
            }
            3 | 7 => {
                let k = s / 4;
                let entry = CODE + 0x1000 * (k + 1);
                let sp = STACK_TOP - 0x1000 * (k + 1);
                let _ = sys!(cpu, thread::ex_regs(cpu, Cap::new([T1, T2][k as usize]), entry, sp, fl));
                cpu.goto(s + 1);
            }
            8 => {
                let _ = sys!(cpu, factory::create_gate(cpu, F, GATE, Some((Cap::new(T1), 0x100))));
                cpu.goto(11);
            }
            11 => {
                let w = Fpage::mem(KIP_WINDOW, 12, MemRights::empty());
                if sys!(cpu, sigma0::map_kip(cpu, PAGER, w)).is_err() {
                    bump(cpu, ERRORS)?;
                }
                cpu.goto(12);
            }
            12 => {
                let w = Fpage::mem(RAM_WINDOW, 12, MemRights::empty());
                if sys!(cpu, sigma0::map_any(cpu, PAGER, 12, w)).is_err() {
                    bump(cpu, ERRORS)?;
                }
                cpu.goto(13);
            }
            13 => {
                let w = Fpage::mem(RAM16_WINDOW, 14, MemRights::empty());
                if sys!(cpu, sigma0::map_any(cpu, PAGER, 14, w)).is_err() {
                    bump(cpu, ERRORS)?;
                }
                cpu.goto(9);
            }
            9 => {
                // the ledger: both RAM windows hold the count, the KIP its magic
                let l = cpu.load_u64(LEDGER)?;
                let kip_ok = cpu.load_u64(KIP_WINDOW)? as u32 == l4_sys::kip::MAGIC;
                if cpu.load_u64(RAM_WINDOW)? != l || cpu.load_u64(RAM16_WINDOW + 0x3008)? != l || !kip_ok {
                    bump(cpu, LEDGER_BAD)?;
                }
                cpu.store_u64(RAM_WINDOW, l + 1)?;
                cpu.store_u64(RAM16_WINDOW + 0x3008, l + 1)?;
                cpu.store_u64(LEDGER, l + 1)?;
                // call with the next number; the reply must be number + 1000
                let n = cpu.load_u64(CALLS)? + 1;
                cpu.utcb().mr[0] = n;
                let r = sys!(cpu, ipc::call(cpu, GATE, MsgTag::new(0, 1, 0, TagFlags::empty()), TimeoutPair::NEVER));
                match r {
                    Ok(_) if cpu.utcb().mr[0] == n + 1000 => cpu.store_u64(CALLS, n)?,
                    _ => bump(cpu, ERRORS)?,
                }
                cpu.goto(10);
            }
            10 => {
                let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(150)));
                cpu.goto(9);
            }
            _ => return Err(cpu.crash()),
        }
        Ok(())
    }
}

/// T1: serves the gate; each number must be the last one + 1.
pub struct Server;

fn served(cpu: &mut Cpu<'_>, got: Result<ipc::Received, l4_sys::Error>) -> Result<(), Trap> {
    match got {
        Ok(g) if g.label & !3 == 0x100 => {
            let n = cpu.utcb().mr[0];
            if n != cpu.load_u64(SERVED)? + 1 {
                bump(cpu, ERRORS)?;
            }
            cpu.store_u64(SERVED, n)?;
            cpu.set_r(0, n);
            let slow = cpu.load_u64(SERVER_DELAY)? > 0;
            cpu.goto(if slow { 2 } else { 1 });
        }
        // the reply half failed: the caller no longer waits for it
        Err(l4_sys::Error::Ipc(e)) if e.phase == l4_sys::error::Phase::Send => {
            bump(cpu, REPLY_FAILED)?;
            cpu.goto(0);
        }
        _ => {
            bump(cpu, ERRORS)?;
            cpu.goto(0);
        }
    }
    Ok(())
}

impl Program for Server {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        cpu.bare_entry();
        if cpu.state() == 0 {
            let g = sys!(cpu, ipc::wait(cpu, TimeoutPair::NEVER));
            served(cpu, g)
        } else if cpu.state() == 2 {
            // a slow server: works (sleeps) before it replies
            let delay = cpu.load_u64(SERVER_DELAY)?;
            if sys!(cpu, ipc::sleep(cpu, Timeout::from_us(delay))).is_err() {
                bump(cpu, ERRORS)?;
            }
            cpu.goto(1);
            Ok(())
        } else {
            let n = cpu.r(0);
            cpu.utcb().mr[0] = n + 1000;
            let tag = MsgTag::new(0, 1, 0, TagFlags::empty());
            let g = sys!(cpu, ipc::reply_and_wait(cpu, tag, 0, TimeoutPair::NEVER));
            served(cpu, g)
        }
    }
}

/// T2: sleeps [`SLEEP_US`] at a time and checks each sleep.
pub struct Sleeper;
impl Program for Sleeper {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        cpu.bare_entry();
        if cpu.state() == 0 {
            let now = cpu.clock_us();
            cpu.set_r(0, now);
            cpu.goto(1);
            return Ok(());
        }
        let r = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(SLEEP_US)));
        let took = cpu.clock_us() - cpu.r(0);
        if r.is_err() {
            bump(cpu, ERRORS)?;
        } else if took < SLEEP_US {
            bump(cpu, EARLY)?;
        } else if took > 2 * SLEEP_US {
            bump(cpu, LATE)?;
        }
        bump(cpu, SLEEPS)?;
        cpu.goto(0);
        Ok(())
    }
}

/// Registers the three programs.
pub fn register(m: &mut fiasco_model::Model) {
    use std::sync::Arc;
    m.register_program(CODE, Arc::new(Main));
    m.register_program(CODE + 0x1000, Arc::new(Server));
    m.register_program(CODE + 0x2000, Arc::new(Sleeper));
}

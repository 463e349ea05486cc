//! A child whose threads sit on four CPUs (issue 13), as model programs at
//! CODE (main), CODE+0x1000 (server), CODE+0x2000 (client), CODE+0x3000
//! (writer). Main places each thread with `run_thread` and a one-CPU set
//! through rtcr's scheduler proxy: the server on CPU [`SERVER_CPU`], the
//! client on [`CLIENT_CPU`], the writer on [`WRITER_CPU`]; main stays on
//! CPU 0, where rtcr starts it. Every check is the child's own: a broken
//! one crashes the thread (an invalid instruction rtcr reports).
//!
//! * The client calls the server's gate with sequence numbers 0, 1, 2, …;
//!   the server checks each is the next one ([`SERVED`]) and answers it
//!   plus 1000; the client checks the answer and counts ([`DONE`]). A call
//!   lost or made twice by a checkpoint or a restore trips a check.
//! * The writer counts in its register r0 and in memory ([`W`], and 2 ×
//!   at [`W2`]), checking before each step that memory holds what its
//!   register says: a cut whose registers and memory come from different
//!   moments trips it.
//! * Main checks the ledger every 100 µs: `SERVED ≤ DONE + 1` (the
//!   server is at most one call ahead), and `DONE ≤ SERVED + 1`. Live,
//!   `DONE ≤ SERVED` holds (the server counts before it answers); the
//!   slack of one is rtcr's rule for a call that completes after the cut:
//!   the image has the client past the call with its answer, and the
//!   server before its handling of it, which it does again after a
//!   restore (once, as its own check shows), so a thread on another CPU
//!   may see the client one ahead until then.
//!
//! Thread indices (rtcr's, the order of creation): 0 main, 1 server,
//! 2 client, 3 writer.

use fiasco_model::{sys, Cpu, Program, Trap};
use l4_sys::cap::{kind, Cap, CapIdx};
use l4_sys::msgtag::{MsgTag, TagFlags};
use l4_sys::scheduler::SchedParam;
use l4_sys::thread::{Control, ExRegsFlags};
use l4_sys::{factory, ipc, scheduler, thread, Kernel, Timeout, TimeoutPair};

use crate::{CODE, DATA};

/// The next sequence number the server expects (= calls it served).
pub const SERVED: u64 = DATA;
/// Calls the client completed.
pub const DONE: u64 = DATA + 0x08;
/// The writer's count.
pub const W: u64 = DATA + 0x10;
/// Twice the writer's count.
pub const W2: u64 = DATA + 0x18;
/// Main's checks so far.
pub const CHECKS: u64 = DATA + 0x20;

/// The server's CPU.
pub const SERVER_CPU: u32 = 2;
/// The client's CPU.
pub const CLIENT_CPU: u32 = 1;
/// The writer's CPU.
pub const WRITER_CPU: u32 = 3;
/// Each thread's CPU by rtcr's thread index.
pub const CPUS: [u32; 4] = [0, SERVER_CPU, CLIENT_CPU, WRITER_CPU];

const UTCB: u64 = 0xB300_0000;
const THREADS: [CapIdx; 3] = [CapIdx(0x10), CapIdx(0x11), CapIdx(0x12)];
const PRIOS: [u64; 3] = [12, 11, 10];
const GATE: CapIdx = CapIdx(0x20);
const F: Cap<kind::Factory> = Cap::new(CapIdx(2));
const SCHED: Cap<kind::Scheduler> = Cap::new(CapIdx(7));
const TASK: Cap<kind::Task> = Cap::new(CapIdx(1));

/// Main: makes the threads and the gate, places and starts them, then
/// checks the call ledger.
pub struct Main;
impl Program for Main {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        let s = cpu.state();
        match s {
            0..=2 => {
                let _ = sys!(cpu, factory::create_thread(cpu, F, THREADS[s as usize]));
                cpu.goto(s + 1);
            }
            3..=5 => {
                let k = s - 3;
                let c = Control::new().pager(CapIdx(4)).exc_handler(CapIdx(4)).bind(UTCB + 0x400 * (k + 1), TASK);
                let _ = sys!(cpu, thread::control(cpu, Cap::new(THREADS[k as usize]), &c));
                cpu.goto(s + 1);
            }
            6 => {
                let _ = sys!(cpu, factory::create_gate(cpu, F, GATE, Some((Cap::new(THREADS[0]), 0x100))));
                cpu.goto(7);
            }
            7..=9 => {
                let k = (s - 7) as usize;
                let p = SchedParam::on(CPUS[k + 1], PRIOS[k]);
                let r = sys!(cpu, scheduler::run_thread(cpu, SCHED, Cap::new(THREADS[k]), &p));
                if r.is_err() {
                    return Err(cpu.crash());
                }
                cpu.goto(s + 1);
            }
            10..=12 => {
                let k = s - 10;
                let fl = match cpu.arch() {
                    l4_sys::exc::Arch::Amd64 => ExRegsFlags::empty(),
                    l4_sys::exc::Arch::Arm64 => ExRegsFlags::ARM64_SET_EL_EL0,
                };
                let (entry, sp) = (CODE + 0x1000 * (k + 1), crate::STACK_TOP - 0x1000 * (k + 1));
                let _ = sys!(cpu, thread::ex_regs(cpu, Cap::new(THREADS[k as usize]), entry, sp, fl));
                cpu.goto(s + 1);
            }
            13 => {
                let (served, done) = (cpu.load_u64(SERVED)?, cpu.load_u64(DONE)?);
                if done > served + 1 || served > done + 1 {
                    return Err(cpu.crash());
                }
                let n = cpu.load_u64(CHECKS)?;
                cpu.store_u64(CHECKS, n + 1)?;
                cpu.goto(14);
            }
            _ => {
                // now and then longer than rtcr waits for a blocked call
                // at a cut (SETTLE_US): that cut cancels the sleep and
                // issues it again
                let n = cpu.load_u64(CHECKS)?;
                let us = if n.is_multiple_of(256) { 30_000 } else { 100 };
                let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(us)));
                cpu.goto(13);
            }
        }
        Ok(())
    }
}

/// The server: r1 the number received; state 0 waits, 1 answers and
/// waits, 2 checks and counts.
pub struct Server;
fn took(cpu: &mut Cpu<'_>, got: Result<ipc::Received, l4_sys::Error>) {
    match got {
        Ok(_) => {
            let w = cpu.utcb().mr[0];
            cpu.set_r(1, w);
            cpu.goto(2);
        }
        // a reply nobody waits for (the caller was restored past its call)
        Err(_) => cpu.goto(0),
    }
}
impl Program for Server {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        match cpu.state() {
            0 => {
                let g = sys!(cpu, ipc::wait(cpu, TimeoutPair::NEVER));
                took(cpu, g);
            }
            1 => {
                let w = cpu.r(1);
                cpu.utcb().mr[0] = w + 1000;
                let tag = MsgTag::new(0, 1, 0, TagFlags::empty());
                let g = sys!(cpu, ipc::reply_and_wait(cpu, tag, 0, TimeoutPair::NEVER));
                took(cpu, g);
            }
            _ => {
                let n = cpu.load_u64(SERVED)?;
                if cpu.r(1) != n {
                    return Err(cpu.crash());
                }
                cpu.store_u64(SERVED, n + 1)?;
                cpu.goto(1);
            }
        }
        Ok(())
    }
}

/// The client: r0 the next sequence number. Calls, checks the answer,
/// counts, every 8 calls sleeps 30 µs.
pub struct Client;
impl Program for Client {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        match cpu.state() {
            0 => {
                let k = cpu.r(0);
                cpu.utcb().mr[0] = k;
                let r = sys!(cpu, ipc::call(cpu, GATE, MsgTag::new(0, 1, 0, TagFlags::empty()), TimeoutPair::NEVER));
                if r.is_err() || cpu.utcb().mr[0] != k + 1000 {
                    return Err(cpu.crash());
                }
                cpu.set_r(0, k + 1);
                cpu.store_u64(DONE, k + 1)?;
                if (k + 1).is_multiple_of(8) {
                    cpu.goto(1);
                }
            }
            _ => {
                let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(30)));
                cpu.goto(0);
            }
        }
        Ok(())
    }
}

/// The writer: r0 its count; memory must hold it (W) and twice it (W2).
/// Every 256 counts it sleeps 20 µs.
pub struct Writer;
impl Program for Writer {
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap> {
        match cpu.state() {
            0 => {
                let n = cpu.r(0);
                if cpu.load_u64(W)? != n || cpu.load_u64(W2)? != 2 * n {
                    return Err(cpu.crash());
                }
                cpu.store_u64(W, n + 1)?;
                cpu.store_u64(W2, 2 * (n + 1))?;
                cpu.set_r(0, n + 1);
                if (n + 1).is_multiple_of(256) {
                    cpu.goto(1);
                }
            }
            _ => {
                let _ = sys!(cpu, ipc::sleep(cpu, Timeout::from_us(20)));
                cpu.goto(0);
            }
        }
        Ok(())
    }
}

/// Registers the four programs.
pub fn register(m: &mut fiasco_model::Model) {
    use std::sync::Arc;
    m.register_program(CODE, Arc::new(Main));
    m.register_program(CODE + 0x1000, Arc::new(Server));
    m.register_program(CODE + 0x2000, Arc::new(Client));
    m.register_program(CODE + 0x3000, Arc::new(Writer));
}

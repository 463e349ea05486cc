//! How model children are written: a [`Program`] is a step function over
//! the thread's register file and its task's memory.
//!
//! # The rules, and why
//!
//! A checkpoint captures a thread's registers, its UTCB and its task's
//! memory — nothing else exists on a real system. So a model program keeps
//! *all* of its state there:
//!
//! * Its position is its instruction pointer: [`Cpu::state`] is `ip >> 4`
//!   relative to the program's entry, [`Cpu::goto`] moves it.
//! * Its variables are in registers ([`Cpu::r`], eight general registers
//!   mapped onto callee-saved registers of the architecture's exception
//!   layout) and in memory ([`Cpu::load_u64`], [`Cpu::store_u64`], which go
//!   through the task's page table and fault like the real MMU).
//! * It talks to the kernel with the ordinary `l4-sys` API: [`Cpu`]
//!   implements [`l4_sys::Kernel`]. Wrap each call in [`sys!`](crate::sys): a kernel
//!   entry ends the step.
//!
//! A step runs from the current IP until a kernel entry, a fault, an
//! exception or a voluntary `Ok(())` (a preemption point). Its effects —
//! register writes, stores, UTCB writes — are committed when it ends with a
//! kernel entry, an exception (like a trapping instruction, what ran before
//! it took effect) or `Ok(())`, and discarded when it faults: after the pager
//! resolves the fault the step runs again from the same registers, as a CPU
//! re-executes a faulting instruction.
//!
//! When a kernel call completes, the thread's IP points *after* the kernel
//! entry of its state (2 bytes on amd64 like `syscall`, 4 on arm64 like
//! `svc #0`), its
//! result sits in the ABI's result registers (rax/rsi or x0/x1) and in its
//! UTCB. The next step re-runs the state's code: the first kernel call of
//! the step is not entered again but returns that result (the UTCB writes
//! made before it are dropped, the UTCB then shows what the kernel wrote).
//! Hence the one rule a program must follow: **in each state, compute a
//! kernel call's arguments only from registers and memory the thread alone
//! writes, and make at most one kernel call before moving to another state**.
//! The model checks the rule: a re-run call must carry the same arguments.
//!
//! That is exactly what a checkpoint/restore needs: a thread stopped after a
//! completed call resumes from registers alone; a thread stopped while
//! blocked (its IPC cancelled) is restarted by setting its IP back to the
//! state's start, which re-issues the call — what rtcr does on the kernel by
//! rewinding the IP to the start of l4-sys's restartable entry sequence.

use std::collections::BTreeMap;

use l4_sys::exc::Arch;
use l4_sys::utcb::Utcb;
use l4_sys::{Invocation, Kernel, MsgTag, Outcome};

use crate::objects::ObjId;
use crate::Model;

/// A model program: the code of a model thread.
pub trait Program: Send + Sync {
    /// Runs one step from the thread's current registers.
    fn step(&self, cpu: &mut Cpu<'_>) -> Result<(), Trap>;

    /// A name for traces and dumps.
    fn name(&self) -> &str {
        "program"
    }
}

/// Why a step ended early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// The program entered the kernel (see [`sys!`](crate::sys)).
    Kernel,
    /// A memory access faulted.
    Fault(Fault),
    /// The program raised an exception: the x86 vector (amd64) or the
    /// exception class (arm64) to report, e.g. 6 / 0x00 for an invalid
    /// instruction.
    Exception(u64),
}

/// A page fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    /// Faulting address.
    pub addr: u64,
    /// A write access.
    pub write: bool,
    /// An instruction fetch.
    pub exec: bool,
    /// The page was present (a rights violation).
    pub present: bool,
}

impl From<Fault> for Trap {
    fn from(f: Fault) -> Self {
        Trap::Fault(f)
    }
}

/// Makes a kernel call from a program step: evaluates the `l4-sys` call and,
/// if it entered the kernel, ends the step so the model can execute it.
/// When the step is re-run after the call completed, the same expression
/// yields the call's result.
#[macro_export]
macro_rules! sys {
    ($cpu:expr, $call:expr) => {{
        let r = $call;
        if $cpu.entered_kernel() {
            return Err($crate::Trap::Kernel);
        }
        r
    }};
}

/// Register indices of the syscall ABI and of the program registers.
pub(crate) struct Abi {
    pub tag: usize,
    pub label: usize,
    pub dest: usize,
    pub timeout: usize,
    pub ip: usize,
    pub sp: usize,
    pub flags: usize,
    pub gpr: [usize; 8],
}

pub(crate) fn abi(arch: Arch) -> Abi {
    use l4_sys::exc::{amd64, arm64};
    match arch {
        Arch::Amd64 => Abi {
            tag: amd64::mr::RAX,
            label: amd64::mr::RSI,
            dest: amd64::mr::RDX,
            timeout: amd64::mr::R8,
            ip: amd64::mr::IP,
            sp: amd64::mr::SP,
            flags: amd64::mr::FLAGS,
            // r14, r9, r10, r12 and r13 come last: a kernel call stamps
            // r14 and loads its inputs into the others (the restartable
            // entry), so r(3)..r(7) do not survive a call on amd64
            gpr: [
                amd64::mr::RBX,
                amd64::mr::RBP,
                amd64::mr::R15,
                amd64::mr::R14,
                amd64::mr::R9,
                amd64::mr::R10,
                amd64::mr::R12,
                amd64::mr::R13,
            ],
        },
        Arch::Arm64 => Abi {
            tag: arm64::mr::X0,
            label: arm64::mr::X0 + 1,
            dest: arm64::mr::X0 + 2,
            timeout: arm64::mr::X0 + 3,
            ip: arm64::mr::PC,
            sp: arm64::mr::SP,
            flags: arm64::mr::PSTATE,
            gpr: [20, 21, 22, 23, 24, 25, 26, 27], // x19..x26
        },
    }
}

/// A state's code occupies 32 bytes and starts at a 32-byte boundary. Its
/// kernel entry is l4-sys's restartable sequence, placed at
/// [`RESTART_POINT`]: after the entry the IP is `RESTART_POINT +
/// Arch::restart_len` into the state (22 on amd64, 28 on arm64), as on the
/// real CPU. rtcr's rewind of a cancelled call lands on the restart point:
/// the step runs again (the replay rule makes it compute the same inputs)
/// but, as the real sequence does, the call takes its inputs from the
/// restart registers — where rtcr may have run a relative timeout down.
pub(crate) const STATE_SHIFT: u32 = 5;
/// The low IP bits within a state.
pub(crate) const IP_OFFSET_MASK: u64 = (1 << STATE_SHIFT) - 1;
/// Where in a state the restartable entry sequence starts.
pub(crate) const RESTART_POINT: u64 = 8;

/// The CPU as a program sees it during one step.
pub struct Cpu<'m> {
    pub(crate) m: &'m mut Model,
    pub(crate) tid: ObjId,
    pub(crate) task: ObjId,
    pub(crate) entry: u64,
    pub(crate) regs: Vec<u64>,
    pub(crate) fpu: Vec<u64>,
    pub(crate) utcb: Utcb,
    /// In replay: the UTCB as the kernel left it, swapped in at the call.
    pub(crate) replay_utcb: Option<Utcb>,
    /// The step starts at the restart point: its kernel call takes its
    /// inputs from the restart registers and keeps the old entry stamp.
    pub(crate) restart: bool,
    /// A restarted call as the program computed it (what its re-run after
    /// the call is checked against; the kernel ran the one from the
    /// restart registers).
    pub(crate) program_inv: Option<Invocation>,
    pub(crate) writes: BTreeMap<u64, u8>,
    pub(crate) touched: Vec<(u64, bool)>,
    pub(crate) entered: Option<Invocation>,
    pub(crate) abi: Abi,
    /// This step's kernel entry is a bare `syscall` / `svc` (code that is
    /// not l4-sys's restartable entry): the restart registers are left alone.
    pub(crate) bare: bool,
    /// This step's kernel call is made on the thread's behalf by other code
    /// (rtcr's call stub): the call the thread's program made stays the one
    /// its replay is checked against.
    pub(crate) on_behalf: bool,
}

impl<'m> Cpu<'m> {
    /// The program's state: `(ip - entry) >> 4`.
    pub fn state(&self) -> u64 {
        self.regs[self.abi.ip].wrapping_sub(self.entry) >> STATE_SHIFT
    }

    /// Moves to state `s` (sets the IP to `entry + s * 32`).
    pub fn goto(&mut self, s: u64) {
        self.regs[self.abi.ip] = self.entry + (s << STATE_SHIFT);
    }

    /// Program register `n` (0..8).
    pub fn r(&self, n: usize) -> u64 {
        self.regs[self.abi.gpr[n % 8]]
    }

    /// Sets program register `n` (0..8).
    pub fn set_r(&mut self, n: usize, v: u64) {
        let i = self.abi.gpr[n % 8];
        self.regs[i] = v;
    }

    /// Register `i` of the architecture's exception layout (e.g.
    /// `l4_sys::exc::amd64::mr::RDI`): for code that follows a register ABI
    /// of its own, such as rtcr's trampoline.
    pub fn reg(&self, i: usize) -> u64 {
        self.regs.get(i).copied().unwrap_or(0)
    }

    /// Sets register `i` of the exception layout.
    pub fn set_reg(&mut self, i: usize, v: u64) {
        if let Some(r) = self.regs.get_mut(i) {
            *r = v;
        }
    }

    /// FPU register `i` (0..32; the model's FPU/SIMD state).
    pub fn fpu(&self, i: usize) -> u64 {
        self.fpu.get(i).copied().unwrap_or(0)
    }

    /// Sets FPU register `i`.
    pub fn set_fpu(&mut self, i: usize, v: u64) {
        if let Some(r) = self.fpu.get_mut(i) {
            *r = v;
        }
    }

    /// The stack pointer.
    pub fn sp(&self) -> u64 {
        self.regs[self.abi.sp]
    }

    /// The architecture.
    pub fn arch(&self) -> Arch {
        self.m.cfg.arch
    }

    /// This thread's UTCB address.
    pub fn utcb_addr(&self) -> u64 {
        self.m.thread(self.tid).map(|t| t.utcb_addr).unwrap_or(0)
    }

    /// The kernel clock (as the KIP shows it).
    pub fn clock_us(&self) -> u64 {
        self.m.clock_us
    }

    /// Makes this step's kernel entry a bare `syscall` / `svc #0` with the
    /// inputs in the ABI registers only, as L4Re's own entry code (or any
    /// code other than l4-sys's restartable entry) does: the restart
    /// registers are not written. A program written as a foreign-entry
    /// child calls this at the start of each step.
    pub fn bare_entry(&mut self) {
        self.bare = true;
    }

    /// Makes the kernel call `inv` on the thread's behalf from a bare entry
    /// (rtcr's call stub): like [`Self::bare_entry`], and the call the
    /// thread's own program made stays the one its replay is checked against.
    pub fn call_on_behalf(&mut self, inv: Invocation) -> Outcome {
        self.bare = true;
        self.on_behalf = true;
        self.invoke(inv)
    }

    /// Did the last `l4-sys` call enter the kernel (the step must end)?
    pub fn entered_kernel(&self) -> bool {
        self.entered.is_some()
    }

    /// Raises an invalid-instruction exception (a deliberate crash).
    pub fn crash(&self) -> Trap {
        Trap::Exception(match self.arch() {
            Arch::Amd64 => l4_sys::exc::amd64::TRAP_UD,
            Arch::Arm64 => l4_sys::exc::arm64::EC_UNKNOWN,
        })
    }

    fn check(&mut self, addr: u64, write: bool) -> Result<(), Fault> {
        let vpn = addr >> 12;
        let pte = self.m.task(self.task).and_then(|t| t.pages.get(&vpn)).copied();
        match pte {
            Some(p) if p.rights & 4 != 0 && (!write || p.rights & 2 != 0) => {
                self.touched.push((vpn, write));
                Ok(())
            }
            Some(_) => Err(Fault { addr, write, exec: false, present: true }),
            None => Err(Fault { addr, write, exec: false, present: false }),
        }
    }

    fn phys(&self, addr: u64) -> Option<u64> {
        let p = self.m.task(self.task)?.pages.get(&(addr >> 12))?;
        Some((p.frame << 12) | (addr & 0xfff))
    }

    /// Loads a byte.
    pub fn load_u8(&mut self, addr: u64) -> Result<u8, Fault> {
        self.check(addr, false)?;
        if let Some(b) = self.writes.get(&addr) {
            return Ok(*b);
        }
        let pa = self.phys(addr).ok_or(Fault { addr, write: false, exec: false, present: false })?;
        Ok(self.m.frame_ro(pa >> 12).map(|f| f[(pa & 0xfff) as usize]).unwrap_or(0))
    }

    /// Stores a byte (committed at the end of the step).
    pub fn store_u8(&mut self, addr: u64, v: u8) -> Result<(), Fault> {
        self.check(addr, true)?;
        self.writes.insert(addr, v);
        Ok(())
    }

    /// Loads a little-endian u64 (may span pages).
    pub fn load_u64(&mut self, addr: u64) -> Result<u64, Fault> {
        let mut b = [0u8; 8];
        let end = addr.wrapping_add(7);
        if end >> 12 != addr >> 12 || self.writes.range(addr..=end).next().is_some() {
            // spans pages, or overlaps this step's writes: byte by byte
            for (i, x) in b.iter_mut().enumerate() {
                *x = self.load_u8(addr.wrapping_add(i as u64))?;
            }
            return Ok(u64::from_le_bytes(b));
        }
        self.check(addr, false)?;
        let pa = self.phys(addr).ok_or(Fault { addr, write: false, exec: false, present: false })?;
        let off = (pa & 0xfff) as usize;
        if let Some(f) = self.m.frame_ro(pa >> 12) {
            b.copy_from_slice(&f[off..off + 8]);
        }
        Ok(u64::from_le_bytes(b))
    }

    /// Stores a little-endian u64.
    pub fn store_u64(&mut self, addr: u64, v: u64) -> Result<(), Fault> {
        // check both ends first so a fault leaves no partial store
        self.check(addr, true)?;
        let end = addr.wrapping_add(7);
        if end >> 12 != addr >> 12 {
            self.check(end, true)?;
        }
        // both pages are writable: the bytes go straight into the step's
        // write buffer (no check per byte)
        for (i, x) in v.to_le_bytes().iter().enumerate() {
            self.writes.insert(addr.wrapping_add(i as u64), *x);
        }
        Ok(())
    }

    /// Fills `len` bytes at `addr` with `v`.
    pub fn fill(&mut self, addr: u64, len: u64, v: u8) -> Result<(), Fault> {
        for i in 0..len {
            self.store_u8(addr + i, v)?;
        }
        Ok(())
    }
}

impl Kernel for Cpu<'_> {
    fn utcb(&mut self) -> &mut Utcb {
        &mut self.utcb
    }

    fn invoke(&mut self, inv: Invocation) -> Outcome {
        if let Some(real) = self.replay_utcb.take() {
            // the kernel call this step re-runs: it already happened
            if let Some(last) = self.m.thread(self.tid).and_then(|t| t.last_inv).filter(|_| !self.on_behalf) {
                assert_eq!(
                    (last.dest, last.tag, last.label, last.timeout),
                    (inv.dest, inv.tag, inv.label, inv.timeout),
                    "model program broke the replay rule: the re-run kernel call differs from the one made \
                     (compute call arguments only from registers and thread-private memory)"
                );
            }
            self.utcb = real;
            let ip = self.regs[self.abi.ip] & !IP_OFFSET_MASK;
            self.regs[self.abi.ip] = ip;
            return Outcome { tag: MsgTag(self.regs[self.abi.tag]), label: self.regs[self.abi.label] };
        }
        assert!(
            self.entered.is_none(),
            "model program made a second kernel entry in one step: wrap l4-sys calls in sys!()"
        );
        let rr = self.m.cfg.arch.restart_regs();
        if self.restart {
            // a rewound call: the real sequence moves the inputs from the
            // restart registers again (the stamp is not re-taken)
            let again = Invocation {
                dest: self.regs[rr.dest],
                tag: MsgTag(self.regs[rr.tag]),
                label: self.regs[rr.label],
                timeout: l4_sys::TimeoutPair::from_raw(self.regs[rr.timeout]),
            };
            assert_eq!(
                (again.dest, again.tag, again.label),
                (inv.dest, inv.tag, inv.label),
                "model program broke the replay rule: the restarted kernel call differs from the one made"
            );
            self.entered = Some(again);
            self.program_inv = Some(inv);
            return Outcome { tag: MsgTag(0x8000), label: 0 };
        }
        self.entered = Some(inv);
        if self.bare {
            // a bare kernel entry: the inputs are in the ABI registers only
            return Outcome { tag: MsgTag(0x8000), label: 0 };
        }
        // l4-sys's restartable entry holds the inputs in preserved
        // registers (`Arch::restart_regs`), as the real code does
        self.regs[rr.tag] = inv.tag.0;
        self.regs[rr.label] = inv.label;
        self.regs[rr.dest] = inv.dest;
        self.regs[rr.timeout] = inv.timeout.raw();
        self.regs[rr.stamp] = self.m.counter();
        // what the program sees should it not stop (it must: see sys!)
        Outcome { tag: MsgTag(0x8000), label: 0 }
    }
}

//! The checkpointer: one consistent cut of the whole child.
//!
//! 1. Stop every started thread: ex_regs CANCEL | TRIGGER_EXCEPTION. Its
//!    exception (to rtcr's per-thread gate) carries the full register set,
//!    and with TRANSFER_FPU (rtcr's BDR asks for it) its FPU state, which
//!    rtcr saves at once; rtcr does not reply, so the thread stays stopped. A thread that was
//!    blocked in a kernel call sees it cancelled (SECANCELED/RECANCELED).
//! 2. Save each thread's UTCB through the trampoline (the kernel lets no
//!    other task map a UTCB): rtcr points the stopped thread at the
//!    trampoline with [`trampoline::OP_SAVE`]; it copies its UTCB into the
//!    thread's exchange page and raises a breakpoint, which stops it again.
//!    An interrupted call's timeouts are kept as time remaining. l4-sys's
//!    restartable entry keeps the timeout pair in a preserved register
//!    (r13 / x7) and stamps a free-running counter (TSC / CNTVCT_EL0) into
//!    another (r14 / x8) when the call is made: an absolute timeout names a
//!    buffer register holding the deadline, which is kept as deadline − now;
//!    a relative one is run down by the time since the stamp
//!    ([`run_down_relative_timeouts`]), at the cut for the image and again at
//!    the resume, so a checkpoint does not stretch a child's sleep.
//! 3. Write-protect the pages written since the last checkpoint (the next
//!    write faults to rtcr and marks the page dirty again), in the child's
//!    own space, each run of neighbouring pages as the fewest naturally
//!    aligned fpages ([`crate::pageset::PageSet`] keeps them as runs; one kernel call per
//!    [`UNMAP_MAX`](l4_sys::task::UNMAP_MAX) of them, none per page); rtcr's per-page bookkeeping
//!    of them waits until the threads run again. Their contents
//!    are copied into the shadow after the resume ([`Supervisor::complete`]),
//!    and a write that comes first faults to rtcr, which copies the page
//!    before it grants the write (copy on write). Read back gate labels.
//! 4. Resume every thread by a plain send of its register set to its thread
//!    capability (checked on the kernel: probe 1). A thread whose kernel call
//!    was cancelled is rewound by [`Arch::restart_len`] to the start of
//!    l4-sys's restartable entry, which loads the call's inputs again from
//!    preserved registers, so the call is made again — the thread cannot
//!    tell it was stopped.
//!
//! The pause covers 1–4 and no page copy; the copy and the image come after.
//!
//! Known limitation: a call cut after its send phase (RECANCELED: the
//! server already has the request) is re-issued whole, so the server sees
//! that request a second time, and its reply to the first goes nowhere (the
//! cancel ended the reply capability). Calls between a checkpointed child's
//! own threads are therefore at-least-once across a checkpoint; a server
//! whose requests are not idempotent should number them. Calls to rtcr
//! itself are not affected (rtcr is never stopped).

use alloc::vec::Vec;

use l4_sys::cap::{kind, Cap, CapIdx};
use l4_sys::exc::Arch;
use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::task::{self, unmap_mask};
use l4_sys::thread::{self, ExRegsFlags, KEEP};
use l4_sys::{ipc, irq, MsgTag, Timeout, TimeoutPair};
use rtcr_image::record::{CapRecord, Checkpoint, ObjectRecord, PageRecord, ThreadRecord, ThreadState};

use crate::labels::{self, Service};
use crate::state::{ObjKind, Supervisor, NO_DONATION};
use crate::{Env, Error};

/// The trampoline's interface. rtcr maps its code at
/// [`crate::ChildSpec::trampoline`]; it runs in a stopped thread with the
/// operation in rdi / x0 and the exchange page in rsi / x1, copies the
/// UTCB (128 words) out to or in from the page, and ends with a breakpoint
/// (`int3`, trap 3 / `brk`, EC 0x3C), using no stack.
pub mod trampoline {
    /// Copy the UTCB to the exchange page.
    pub const OP_SAVE: u64 = 1;
    /// Copy the exchange page into the UTCB.
    pub const OP_LOAD: u64 = 2;
    /// x86 breakpoint trap number.
    pub const TRAP_BP: u64 = 3;
    /// Arm BRK exception class.
    pub const EC_BRK: u64 = 0x3C;
}

/// The coarsest the kernel clock (the KIP's) moves: whole milliseconds on
/// x86 Fiasco. Time measured with it is taken as that much less, so a
/// receive rtcr issues again never ends before it would have.
pub const CLOCK_TICK_US: u64 = 1_000;

/// The priority rtcr steps down to for a moment so that every thread of
/// the child that can run gets the CPU (children run at [`MIN_CHILD_PRIO`]
/// or above).
pub const YIELD_PRIO: u64 = 1;
/// The lowest priority a child thread gets (a lower one asked for is
/// raised to it): strictly above [`YIELD_PRIO`].
pub const MIN_CHILD_PRIO: u64 = 2;
/// How long a cut waits, with the stopped threads running again, for the
/// threads that were in a kernel call to come back from it (µs) before it
/// cancels them.
pub const SETTLE_US: u64 = 10_000;

/// What one checkpoint did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Sequence number of this checkpoint.
    pub seq: u64,
    /// Pages copied (those written since the last checkpoint).
    pub pages_copied: usize,
    /// The child's pause (µs), from the stamp counter (TSC / CNTVCT).
    pub pause_us: u64,
    /// Threads stopped.
    pub threads: usize,
    /// Fpages the dirty set was write-protected with (in
    /// `ceil(fpages / UNMAP_MAX)` kernel calls).
    pub fpages: usize,
    /// The part of the pause those kernel calls took (µs, stamp counter).
    pub protect_us: u64,
    /// The copy of the dirty pages after the resume (µs, stamp counter;
    /// [`Supervisor::checkpoint`] fills it in, 0 after [`Supervisor::pause`]).
    pub copy_us: u64,
}

/// Covers the 4 KiB pages at `addrs` (ascending, no repeats) with as few
/// naturally aligned power-of-two fpages as possible, each covering only
/// pages of the set, with the W right to revoke.
#[cfg(test)]
pub(crate) fn runs_to_fpages(addrs: impl IntoIterator<Item = u64>) -> Vec<Fpage> {
    let mut set = crate::pageset::PageSet::new();
    for a in addrs {
        set.insert(a >> 12);
    }
    fpages_of_runs(set.runs())
}

/// The runs (first page number, pages) as the fewest naturally aligned
/// power-of-two fpages, each covering only pages of a run, with the W
/// right to revoke: work per run and per block, none per page.
pub(crate) fn fpages_of_runs(runs: impl Iterator<Item = (u64, u64)>) -> Vec<Fpage> {
    let mut out = Vec::new();
    for (vpn, n) in runs {
        aligned_blocks(vpn << 12, n, MemRights::W, &mut out);
    }
    out
}

/// The `n` pages from `a` as the largest naturally aligned blocks, each an
/// fpage with `rights`.
pub(crate) fn aligned_blocks(mut a: u64, n: u64, rights: MemRights, out: &mut Vec<Fpage>) {
    let mut left = n;
    while left > 0 {
        // the largest aligned block at `a` that fits in what is left
        let align = if a == 0 { 63 } else { a.trailing_zeros().min(63) };
        let fits = 63 - left.leading_zeros() + 12;
        let order = align.min(fits).max(12);
        out.push(Fpage::mem(a, order, rights));
        a += 1u64 << order;
        left -= 1u64 << (order - 12);
    }
}

/// One stopped thread: what the pause captured.
#[derive(Clone, Debug)]
pub struct Saved {
    /// Thread index.
    pub thread: u32,
    /// Registers (rewound if its kernel call was cancelled).
    pub regs: Vec<u64>,
    /// UTCB words.
    pub utcb: Vec<u64>,
    /// Where it was.
    pub state: ThreadState,
    /// FPU/SIMD state.
    pub fpu: Vec<u8>,
    /// Absolute timeouts of the interrupted call, as time remaining.
    pub timeouts: Vec<(u8, u64)>,
}

impl Saved {
    /// A thread stopped in user code (or just after a call), as it is.
    fn running(thread: u32, regs: Vec<u64>, utcb: Vec<u64>, fpu: Vec<u8>) -> Self {
        Saved { thread, regs, utcb, state: ThreadState::Running, fpu, timeouts: Vec::new() }
    }
}

/// Register indices of the trampoline arguments and of IP/SP.
pub(crate) struct Regs {
    pub ip: usize,
    pub sp: usize,
    /// The kernel entry's tag register (rax / x0).
    pub tag: usize,
    /// l4-sys's restartable entry: the register holding the timeout pair
    /// (r13 / x7).
    pub timeout: usize,
    pub arg0: usize,
    pub arg1: usize,
    /// The kernel entry's label register (rsi / x1).
    pub label: usize,
    /// The kernel entry's dest|flags register (rdx / x2).
    pub dest: usize,
    /// The kernel entry's timeout register (r8 / x3).
    pub abi_timeout: usize,
}

pub(crate) fn regs(arch: Arch) -> Regs {
    use l4_sys::exc::{amd64, arm64};
    match arch {
        Arch::Amd64 => Regs {
            ip: amd64::mr::IP,
            sp: amd64::mr::SP,
            tag: amd64::mr::RAX,
            timeout: Arch::Amd64.restart_regs().timeout,
            arg0: amd64::mr::RDI,
            arg1: amd64::mr::RSI,
            label: amd64::mr::RSI,
            dest: amd64::mr::RDX,
            abi_timeout: amd64::mr::R8,
        },
        Arch::Arm64 => Regs {
            ip: arm64::mr::PC,
            sp: arm64::mr::SP,
            tag: arm64::mr::X0,
            timeout: Arch::Arm64.restart_regs().timeout,
            arg0: arm64::mr::X0,
            arg1: arm64::mr::X0 + 1,
            label: arm64::mr::X0 + 1,
            dest: arm64::mr::X0 + 2,
            abi_timeout: arm64::mr::X0 + 3,
        },
    }
}

/// Takes the time that has passed since a cancelled kernel call was made
/// off its relative timeouts, so that re-issuing it waits only for the rest.
///
/// `regs` is the register set of a thread stopped in l4-sys's restartable
/// entry: its timeout register holds the call's timeout pair, its stamp
/// register the counter value when the call was made (or last run down).
/// Afterwards the stamp reads `now`, so running down again later subtracts
/// only the time since. A timeout that has run out becomes zero (the call
/// times out at once, as it would have); "never" and absolute timeouts are
/// left alone (absolute deadlines are handled through the UTCB). A stamp in
/// the future (a child with its own kernel-entry code) counts as no time.
pub fn run_down_relative_timeouts(arch: Arch, regs: &mut [u64], now: u64, hz: u64) {
    let rr = arch.restart_regs();
    if regs.len() <= rr.timeout.max(rr.stamp) {
        return;
    }
    let elapsed_us =
        if hz == 0 { 0 } else { (u128::from(now.saturating_sub(regs[rr.stamp])) * 1_000_000 / u128::from(hz)) as u64 };
    let run_down = |t: l4_sys::Timeout| match t.rel_us() {
        Some(us) => l4_sys::Timeout::from_us(us.saturating_sub(elapsed_us)),
        None => t,
    };
    let pair = TimeoutPair::from_raw(regs[rr.timeout]);
    regs[rr.timeout] = TimeoutPair::new(run_down(pair.snd), run_down(pair.rcv)).raw();
    regs[rr.stamp] = now;
}

/// The entry-stamp counter's rate to use: `nominal` (the KIP's CPU
/// frequency, CNTFRQ_EL0), unless `measured` against the kernel clock is more
/// than 2 % off — the TSC under QEMU TCG ran 11–33 % fast — then the measured
/// one, so that relative timeouts run down in kernel time.
pub fn stamp_hz_in_kernel_time(nominal: u64, measured: Option<u64>) -> u64 {
    match measured {
        Some(m) if m > 0 && m.abs_diff(nominal) * 50 > nominal => m,
        _ => nominal,
    }
}

impl Supervisor {
    /// Waits for the exception of thread `t` (answering anything else the
    /// child sends meanwhile); returns its register set.
    pub(crate) fn wait_exception<E: Env>(&mut self, env: &mut E, t: u32) -> Result<Vec<u64>, Error> {
        let mut got = self.wait_exceptions(env, &[t])?;
        got.pop().map(|(_, r)| r).ok_or(Error::StopTimeout)
    }

    /// Waits until each thread of `ts` has reported an exception, in any
    /// order, answering any other request that was already on its way.
    pub(crate) fn wait_exceptions<E: Env>(&mut self, env: &mut E, ts: &[u32]) -> Result<Vec<(u32, Vec<u64>)>, Error> {
        Ok(self.wait_exceptions_fpu(env, ts)?.into_iter().map(|(t, r, _)| (t, r)).collect())
    }

    /// As [`Self::wait_exceptions`], with each thread's FPU state (moved to
    /// rtcr by the kernel with the exception, then saved).
    #[allow(clippy::type_complexity)]
    pub(crate) fn wait_exceptions_fpu<E: Env>(
        &mut self,
        env: &mut E,
        ts: &[u32],
    ) -> Result<Vec<(u32, Vec<u64>, Vec<u8>)>, Error> {
        self.collect(env, ts, None)
    }

    /// Waits for the threads `ts` to stop (an exception each), answering
    /// whatever else the child sends meanwhile. With `within_us`, returns
    /// those that stopped in that time; without, all of them or
    /// [`Error::StopTimeout`]. A held call of a thread in `ts` that returns
    /// counts as its stop (with the registers it goes on with). Stops of
    /// other threads: a held call returning or an armed thread stopping is
    /// resumed at once, or kept for a later wait while a cut is taken; any
    /// other exception is a crash, reported by the next `serve`.
    #[allow(clippy::type_complexity)]
    pub(crate) fn collect<E: Env>(
        &mut self,
        env: &mut E,
        ts: &[u32],
        within_us: Option<u64>,
    ) -> Result<Vec<(u32, Vec<u64>, Vec<u8>)>, Error> {
        self.collect_some(env, ts, within_us, ts.len())
    }

    /// As [`Self::collect`], returning as soon as `enough` threads stopped.
    #[allow(clippy::type_complexity)]
    pub(crate) fn collect_some<E: Env>(
        &mut self,
        env: &mut E,
        ts: &[u32],
        within_us: Option<u64>,
        enough: usize,
    ) -> Result<Vec<(u32, Vec<u64>, Vec<u8>)>, Error> {
        let n = self.arch.exc_words();
        let mut out: Vec<(u32, Vec<u64>, Vec<u8>)> = Vec::new();
        // stops that came in while rtcr waited for another thread
        let mut i = 0;
        while i < self.early.len() {
            if ts.contains(&self.early[i].0) && !out.iter().any(|x| x.0 == self.early[i].0) {
                let e = self.early.remove(i);
                self.threads[e.0 as usize].armed = false;
                out.push(e);
            } else {
                i += 1;
            }
        }
        let start = env.clock_us();
        let mut spins = 0;
        while out.len() < enough.min(ts.len()) {
            let wait = match within_us {
                // only what is already there
                Some(0) => Timeout::ZERO,
                Some(w) => {
                    let gone = env.clock_us().saturating_sub(start);
                    if gone >= w {
                        break;
                    }
                    Timeout::from_us(w - gone)
                }
                None => {
                    spins += 1;
                    if spins > 64 + 4 * ts.len() {
                        return Err(Error::StopTimeout);
                    }
                    Timeout::from_us(200_000)
                }
            };
            {
                let u = env.utcb();
                u.bdr = l4_sys::item::Bdr::INHERIT_FPU;
                u.br[0] = l4_sys::item::rcv_single_cap_local_id(crate::state::SCRATCH);
            }
            let got = ipc::wait(env, TimeoutPair::new(Timeout::NEVER, wait));
            env.utcb().bdr = 0;
            let got = match got {
                Ok(g) => g,
                Err(e) if crate::state::child_fault(e) => continue,
                Err(e) if e.is_timeout() && within_us == Some(0) => break,
                Err(e) if e.is_timeout() && within_us.is_some() => continue,
                Err(e) if e.is_timeout() => return Err(Error::StopTimeout),
                Err(e) => return Err(Error::Kernel(e)),
            };
            if got.label & !3 == labels::FORWARD {
                // the IRQ fast path waits for its answer (a bind, a detach)
                let r = self.forwarded(env, got.tag);
                self.answer(env, r)?;
                continue;
            }
            match labels::decode(got.label) {
                Some((Service::Exception, i)) if got.tag.words() >= n && (i as usize) < self.threads.len() => {
                    let regs = env.utcb().mr[..n].to_vec();
                    let fpu = env.fpu_save();
                    let code = self.code_of(&regs);
                    if ts.contains(&i) && !out.iter().any(|x| x.0 == i) {
                        let regs = if self.threads[i as usize].held.is_some() && self.is_breakpoint(code) {
                            self.finish_held(i, &regs)
                        } else {
                            self.threads[i as usize].armed = false;
                            regs
                        };
                        out.push((i, regs, fpu));
                    } else if let Some(r) = self.stray_stop(i, code, &regs) {
                        if self.cutting {
                            self.early.push((i, r, fpu));
                        } else {
                            self.resume_with(env, i, &r, &fpu)?;
                        }
                    } else if self.crash_pending.is_none() {
                        // stays stopped; `serve` reports it
                        self.crash_pending = Some((i, code));
                    }
                }
                Some((Service::Exception, _)) => {}
                Some((svc, idx)) => {
                    // a request that was already on its way: answer it
                    let r = self.dispatch(env, svc, idx, got.tag);
                    self.answer(env, r)?;
                }
                None => {}
            }
        }
        out.sort_by_key(|x| x.0);
        Ok(out)
    }

    /// Stops the threads of `started` that can run, cancelling no kernel
    /// call: each not yet asked (not armed, not in a held call) gets ex_regs
    /// TRIGGER_EXCEPTION without CANCEL; the ones that can run stop as soon
    /// as they get the CPU, which [`Self::let_the_child_run`] gives them;
    /// then rtcr takes the stops that wait for it. A held call that
    /// returned meanwhile counts as its thread's stop. What has not stopped
    /// is blocked in a kernel call (and stays armed: it stops when the call
    /// returns).
    #[allow(clippy::type_complexity)]
    pub(crate) fn stop_runnable<E: Env>(
        &mut self,
        env: &mut E,
        started: &[u32],
    ) -> Result<Vec<(u32, Vec<u64>, Vec<u8>)>, Error> {
        // the highest priority first: the kernel does an ex_regs for a
        // thread on another CPU in that thread's own context, so it waits
        // while a busier thread of a higher priority runs there; stopped
        // first, that one is out of the way
        let mut order = started.to_vec();
        order.sort_by_key(|&t| core::cmp::Reverse(self.threads[t as usize].prio));
        for &t in &order {
            if self.threads[t as usize].held.is_none() && !self.threads[t as usize].armed {
                let real = self.thread_cap(t);
                thread::ex_regs(env, real, KEEP, KEEP, ExRegsFlags::TRIGGER_EXCEPTION)?;
                self.threads[t as usize].armed = true;
            }
        }
        let mut out = Vec::new();
        for _ in 0..4 {
            self.let_the_child_run(env)?;
            let waiting: Vec<u32> = started.iter().copied().filter(|t| !out.iter().any(|(s, _, _)| s == t)).collect();
            out.extend(self.collect(env, &waiting, Some(0))?);
            // What has not stopped should be in a kernel call, its stop
            // pending. Not so a thread that was in a page fault when it was
            // asked: the kernel leaves a thread in a kernel-made IPC alone
            // without CANCEL, and once rtcr answered the fault it ran on
            // unasked (seen in a soak on arm64: it ran through the cut and
            // was recorded later than the cut's memory). Its IP tells:
            // after a kernel entry instruction for a kernel call, at the
            // faulting instruction for a fault. Such a thread gets CANCEL
            // as well (a page fault cancelled is taken again once the
            // thread goes on), and every other one is asked again (the
            // kernel ignores that for one asked already).
            let mut again = false;
            for &t in &waiting {
                if out.iter().any(|(s, _, _)| *s == t) || self.threads[t as usize].held.is_some() {
                    continue;
                }
                let real = self.thread_cap(t);
                let old = thread::ex_regs(env, real, KEEP, KEEP, ExRegsFlags::TRIGGER_EXCEPTION)?;
                self.threads[t as usize].armed = true;
                if !self.follows_entry_instruction(env, old.ip) {
                    thread::ex_regs(env, real, KEEP, KEEP, ExRegsFlags::CANCEL | ExRegsFlags::TRIGGER_EXCEPTION)?;
                    again = true;
                }
            }
            if !again {
                break;
            }
        }
        Ok(out)
    }

    /// Lets every thread of the child that can run do so until it stops or
    /// blocks: rtcr drops to [`YIELD_PRIO`] (the kernel switches to the
    /// child's threads at once) and back to its own priority once none of
    /// them is ready. No timeout is involved, so this costs no timer tick.
    ///
    /// On several CPUs the step-down covers only rtcr's own: rtcr then
    /// moves itself, still at [`YIELD_PRIO`], to each other CPU a started
    /// thread of the child runs on, and the kernel gives it that CPU only
    /// once none of the child's threads there is ready. A thread asked to
    /// stop stops as soon as it runs (it cannot run user code again first),
    /// so after the tour every thread that could run has stopped, and its
    /// exception waits for rtcr: no thread on any CPU runs while the cut is
    /// read. Two moves per other CPU (the last one home).
    pub(crate) fn let_the_child_run<E: Env>(&mut self, env: &mut E) -> Result<(), Error> {
        use crate::state::{RTCR_CPU, RTCR_PRIO, SCHED};
        use l4_sys::scheduler::{self, SchedParam};
        let me = self.server();
        scheduler::run_thread(env, SCHED, me, &SchedParam::on(RTCR_CPU, YIELD_PRIO))?;
        for cpu in self.other_child_cpus() {
            scheduler::run_thread(env, SCHED, me, &SchedParam::on(cpu, YIELD_PRIO))?;
        }
        scheduler::run_thread(env, SCHED, me, &SchedParam::on(RTCR_CPU, RTCR_PRIO))?;
        Ok(())
    }

    /// Is `code` the breakpoint of the trampoline and the call stub?
    pub(crate) fn is_breakpoint(&self, code: u64) -> bool {
        match self.arch {
            Arch::Amd64 => code == trampoline::TRAP_BP,
            Arch::Arm64 => code == trampoline::EC_BRK,
        }
    }

    /// Is `code` the exception ex_regs TRIGGER_EXCEPTION raises?
    pub(crate) fn is_trigger(&self, code: u64) -> bool {
        match self.arch {
            Arch::Amd64 => code == l4_sys::exc::amd64::TRAP_TRIGGERED,
            Arch::Arm64 => code == l4_sys::exc::arm64::EC_TRIGGERED,
        }
    }

    /// A stop rtcr did not wait for, but caused: a held call returning
    /// (the stub's breakpoint) or an armed thread back from its call.
    /// Returns the registers the thread goes on with.
    pub(crate) fn stray_stop(&mut self, t: u32, code: u64, regs: &[u64]) -> Option<Vec<u64>> {
        let th = self.threads.get(t as usize)?;
        if th.held.is_some() && self.is_breakpoint(code) {
            return Some(self.finish_held(t, regs));
        }
        if th.armed && self.is_trigger(code) {
            // while a cut is taken the stop is kept for it (the thread
            // stays armed until a wait takes it); otherwise it goes on
            if !self.cutting {
                self.threads[t as usize].armed = false;
            }
            return Some(regs.to_vec());
        }
        if self.is_trigger(code) {
            // a stop asked for twice (the cut's cancel crossed the first on
            // another CPU) and already taken once: it goes on. A program
            // cannot raise this exception itself (ex_regs makes it)
            return Some(regs.to_vec());
        }
        None
    }

    /// A held call returned (the stub's breakpoint, registers `regs`): the
    /// thread's own registers, with the call's results.
    pub(crate) fn finish_held(&mut self, t: u32, regs: &[u64]) -> Vec<u64> {
        let ri = self::regs(self.arch);
        let Some(h) = self.threads[t as usize].held.take() else { return regs.to_vec() };
        let mut r = h.cont;
        r[ri.tag] = regs[ri.tag];
        r[ri.label] = regs[ri.label];
        r
    }

    /// Issues the kernel call `dest`|flags with timeout pair `timeout` again
    /// for stopped thread `t` from the call stub; when it returns, the
    /// thread goes on with `cont` (see [`crate::calls`]).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn hold<E: Env>(
        &mut self,
        env: &mut E,
        t: u32,
        cont: Vec<u64>,
        dest: u64,
        timeout: u64,
        utcb: Vec<u64>,
        fpu: Vec<u8>,
    ) -> Result<(), Error> {
        let ri = regs(self.arch);
        let mut r = cont.clone();
        r[ri.ip] = self.spec.trampoline + crate::calls::STUB_OFFSET;
        // a call with a send phase sends the tag the thread had (its
        // message is in its UTCB); a receive sends nothing
        if dest & 1 == 0 {
            r[ri.tag] = 0;
        }
        r[ri.dest] = dest;
        r[ri.abi_timeout] = timeout;
        self.resume_with(env, t, &r, &fpu)?;
        let since = env.clock_us();
        self.threads[t as usize].held = Some(crate::state::Held { cont, dest, timeout, since, utcb, fpu });
        Ok(())
    }

    /// Resumes a stopped thread whose FPU rtcr did not take (a plain send
    /// of its registers, without TRANSFER_FPU).
    pub(crate) fn resume_keep_fpu<E: Env>(&mut self, env: &mut E, t: u32, r: &[u64]) -> Result<(), Error> {
        let n = r.len();
        env.utcb().mr[..n].copy_from_slice(r);
        let real = self.thread_cap(t);
        ipc::send(env, real.idx(), MsgTag::new(0, n, 0, NO_DONATION), TimeoutPair::SEND_ZERO)?;
        Ok(())
    }

    /// Thread `t`'s UTCB, read through the trampoline while it is stopped
    /// with registers `r`.
    pub(crate) fn save_utcb<E: Env>(&mut self, env: &mut E, t: u32, r: &[u64], fpu: &[u8]) -> Result<Vec<u64>, Error> {
        self.run_trampoline(env, t, r, fpu, trampoline::OP_SAVE)?;
        let mut page = [0u8; 1024];
        env.read_mem(self.exchange_backing(t), &mut page)?;
        Ok(page.chunks(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
    }

    /// Sends a full register set (and the FPU state) to a stopped thread:
    /// it resumes with them.
    pub(crate) fn resume_with<E: Env>(&mut self, env: &mut E, t: u32, r: &[u64], fpu: &[u8]) -> Result<(), Error> {
        let n = r.len();
        env.fpu_load(fpu);
        env.utcb().mr[..n].copy_from_slice(r);
        let real = self.thread_cap(t);
        let tag = MsgTag::new(0, n, 0, l4_sys::msgtag::TagFlags::TRANSFER_FPU | NO_DONATION);
        ipc::send(env, real.idx(), tag, TimeoutPair::SEND_ZERO)?;
        Ok(())
    }

    /// Runs the trampoline in stopped thread `t` (whose registers are `r`)
    /// with `op`; returns when it stopped again.
    pub(crate) fn run_trampoline<E: Env>(
        &mut self,
        env: &mut E,
        t: u32,
        r: &[u64],
        fpu: &[u8],
        op: u64,
    ) -> Result<(), Error> {
        let ri = regs(self.arch);
        let mut tr = r.to_vec();
        tr[ri.ip] = self.spec.trampoline;
        tr[ri.arg0] = op;
        tr[ri.arg1] = self.spec.shared + 4096 * t as u64;
        self.resume_with(env, t, &tr, fpu)?;
        // a stop asked for twice can come while the trampoline runs (see
        // the cut's cancel): the trampoline goes on from there
        for _ in 0..4 {
            let Some((_, back, bfpu)) = self.wait_exceptions_fpu(env, &[t])?.pop() else {
                return Err(Error::StopTimeout);
            };
            let code = self.code_of(&back);
            if self.is_trigger(code) {
                self.resume_with(env, t, &back, &bfpu)?;
                continue;
            }
            if !self.is_breakpoint(code) {
                return Err(Error::Protocol("the trampoline did not end with a breakpoint"));
            }
            return Ok(());
        }
        Err(Error::Protocol("the trampoline was stopped again and again"))
    }

    /// Takes a checkpoint; returns its record and what it cost.
    pub fn checkpoint<E: Env>(&mut self, env: &mut E) -> Result<(Checkpoint, Stats), Error> {
        let (saved, mut stats, t0) = self.pause(env)?;
        let at = env.stamp_now();
        self.complete(env)?;
        let ticks = u128::from(env.stamp_now().wrapping_sub(at));
        stats.copy_us = (ticks * 1_000_000 / u128::from(env.stamp_hz().max(1))) as u64;
        let mut cp = self.record(&saved);
        cp.clock_us = t0;
        Ok((cp, stats))
    }

    /// Is the child's code just before `ip` l4-sys's restartable kernel
    /// entry (`Arch::restart_sequence`)? Read from the frames rtcr gave the
    /// child; code rtcr never mapped does not count.
    pub(crate) fn follows_kernel_entry<E: Env>(&self, env: &mut E, ip: u64) -> bool {
        self.code_before(env, ip, self.arch.restart_sequence())
    }

    /// Is the instruction just before `ip` a kernel entry (`syscall` /
    /// `svc #0`), whatever code led there?
    pub(crate) fn follows_entry_instruction<E: Env>(&self, env: &mut E, ip: u64) -> bool {
        self.code_before(env, ip, crate::calls::entry_instruction(self.arch))
    }

    /// Are the child's bytes just before `ip` `seq`?
    fn code_before<E: Env>(&self, env: &mut E, ip: u64, seq: &[u8]) -> bool {
        let Some(start) = ip.checked_sub(seq.len() as u64) else { return false };
        let mut code = alloc::vec![0u8; seq.len()];
        let mut at = start;
        while at < ip {
            let Some(p) = self.pages.get(&(at >> 12)) else { return false };
            let n = (((at | 0xfff) + 1).min(ip) - at) as usize;
            let off = (at - start) as usize;
            if env.read_mem(p.backing + (at & 0xfff), &mut code[off..off + n]).is_err() {
                return false;
            }
            at += n as u64;
        }
        code == seq
    }

    /// The part of a checkpoint the child notices: stop, save, protect,
    /// resume — without cutting the child's kernel calls where that can be
    /// helped (see [`crate::calls`]):
    ///
    /// 1. every thread not in a held call is asked to stop without CANCEL;
    ///    those in user code stop at once (within [`STOP_GRACE_US`]);
    /// 2. the cut: their UTCBs, the memory write-protected, labels and
    ///    pending IRQs read; they resume exactly as they were;
    /// 3. threads that were in a kernel call stop when it returns (within
    ///    [`SETTLE_US`], while the others run): recorded as in that call
    ///    (a receive) or after it (a call or send that completed after the
    ///    cut), and resumed as they are;
    /// 4. threads still blocked then are cancelled: l4-sys's entry is
    ///    rewound and re-issued whole; a receive from any other entry code
    ///    is issued again from the call stub and held; a call waiting for
    ///    its reply or a send sees the cancel ([`Self::visible_cancels`]);
    /// 5. threads held from an earlier cut are recorded from what rtcr
    ///    knows, with their timeouts run down, and left alone.
    ///
    /// Returns the saved threads for [`Self::record`]; the pause reported
    /// is steps 1–2, what the running threads were stopped for.
    #[allow(clippy::type_complexity)]
    pub fn pause<E: Env>(&mut self, env: &mut E) -> Result<(Vec<Saved>, Stats, u64), Error> {
        self.cutting = true;
        let r = self.cut(env);
        self.cutting = false;
        self.cut_resumed.clear();
        // sigma0 memory given during the cut to a thread it held
        let saved: &[Saved] = r.as_ref().map_or(&[], |r| &r.0);
        self.place_unplaced(env, saved);
        // stops that came in and were not part of the cut go on
        for (t, regs, fpu) in core::mem::take(&mut self.early) {
            self.threads[t as usize].armed = false;
            self.resume_with(env, t, &regs, &fpu)?;
        }
        r
    }

    #[allow(clippy::type_complexity)]
    fn cut<E: Env>(&mut self, env: &mut E) -> Result<(Vec<Saved>, Stats, u64), Error> {
        let t0 = env.clock_us();
        let stamp0 = env.stamp_now();
        let hz = env.stamp_hz();
        let ri = regs(self.arch);
        let started: Vec<u32> = (0..self.threads.len() as u32).filter(|&t| self.threads[t as usize].started).collect();
        // the held calls as they are at the cut (one may return meanwhile)
        let held_at_cut: Vec<(u32, crate::state::Held)> =
            started.iter().filter_map(|&t| self.threads[t as usize].held.clone().map(|h| (t, h))).collect();
        // 1. stop, leaving kernel calls alone
        let stopped = self.stop_runnable(env, &started)?;
        // 2. the cut
        let mut saved: Vec<Saved> = Vec::new();
        for (t, r, fpu) in stopped {
            let words = self.save_utcb(env, t, &r, &fpu)?;
            saved.push(Saved::running(t, r, words, fpu));
        }
        // the pages written since the last cut lose W in the child's own
        // space, each run of neighbouring pages as the fewest naturally
        // aligned fpages (one kernel call per UNMAP_MAX of them, none per
        // page); the set is ordered, so this is one pass with no lookup.
        // A page without W (a read-only segment) is unaffected.
        let dirty = core::mem::take(&mut self.dirty);
        let copied = dirty.len();
        let protect = fpages_of_runs(dirty.runs());
        let fpages = protect.len();
        let protect_from = env.stamp_now();
        task::unmap_many(env, self.child_task(), &protect, unmap_mask::ALL_SPACES)?;
        let protect_ticks = env.stamp_now().wrapping_sub(protect_from);
        self.refresh_gate_labels(env);
        self.sample_irq_pending(env)?;
        // the lowest priority first: resuming a thread on another CPU waits
        // until the kernel runs that thread there (its CPU does the work in
        // the thread's own context), which a busy thread of a higher
        // priority there, resumed before it, would put off for as long as
        // it is busy; rtcr would wait with it
        let mut order: Vec<&Saved> = saved.iter().collect();
        order.sort_by_key(|s| self.threads[s.thread as usize].prio);
        for s in order {
            self.resume_with(env, s.thread, &s.regs, &s.fpu)?;
            self.cut_resumed.push(s.thread);
        }
        // from the stamp counter: the KIP clock may tick in whole
        // milliseconds (x86 Fiasco), far coarser than a pause
        let ticks = env.stamp_now().wrapping_sub(stamp0) as u128;
        let pause_us = (ticks * 1_000_000 / hz.max(1) as u128) as u64;
        // per page, now that the child runs again (rtcr serves no fault
        // before this is done): the pages are write-protected, and their
        // contents wait to be copied (`complete`, or a write fault first)
        for vpn in dirty.iter() {
            if let Some(e) = self.pages.get_mut(&vpn) {
                e.dirty = false;
                e.writable = false;
            }
            self.pending.insert(vpn);
        }
        let us_since =
            |from: u64, now: u64| (u128::from(now.saturating_sub(from)) * 1_000_000 / u128::from(hz.max(1))) as u64;
        // 3. threads in a kernel call at the cut: let the call end
        let blocked: Vec<u32> = started
            .iter()
            .copied()
            .filter(|t| self.threads[*t as usize].armed && !saved.iter().any(|s| s.thread == *t))
            .collect();
        // one at a time: a thread that comes back goes on at once, so a
        // call it answers can come back too
        let settle_from = env.clock_us();
        let mut waiting = blocked.clone();
        while !waiting.is_empty() {
            let gone = env.clock_us().saturating_sub(settle_from);
            // past the settle time, once more for what already came (a stop
            // kept while rtcr waited for another thread must not be
            // cancelled: that would cut the exception it is in)
            let settle = self.spec.settle_us;
            let last = gone >= settle;
            let late = if last {
                self.collect_some(env, &waiting, Some(0), waiting.len())?
            } else {
                self.collect_some(env, &waiting, Some(settle - gone), 1)?
            };
            if late.is_empty() && last {
                break;
            }
            for (t, r, fpu) in late {
                waiting.retain(|x| *x != t);
                let words = self.save_utcb(env, t, &r, &fpu)?;
                let since_cut = us_since(stamp0, env.stamp_now());
                let state = self.after_call(env, &r, &words, since_cut);
                self.resume_with(env, t, &r, &fpu)?;
                self.cut_resumed.push(t);
                saved.push(Saved { thread: t, regs: r, utcb: words, state, fpu, timeouts: Vec::new() });
            }
        }
        // 4. still blocked: cancel; issue again what can be
        let rest: Vec<u32> = blocked.iter().copied().filter(|t| !saved.iter().any(|s| s.thread == *t)).collect();
        // TRIGGER as well as CANCEL: a thread whose stop is on its way (on
        // another CPU its call may have returned since the settle) has that
        // exception cancelled too, and must be asked again. Where the first
        // stop still comes, the second is taken as what it is
        // ([`Self::stray_stop`], [`Self::run_trampoline`])
        for &t in &rest {
            let real = self.thread_cap(t);
            thread::ex_regs(env, real, KEEP, KEEP, ExRegsFlags::CANCEL | ExRegsFlags::TRIGGER_EXCEPTION)?;
        }
        let cancelled = self.collect(env, &rest, None)?;
        for (t, r, fpu) in cancelled {
            let words = self.save_utcb(env, t, &r, &fpu)?;
            let tcr = words[123] & l4_sys::error::tcr::MASK;
            let was_cut = r[ri.tag] & 0x8000 != 0
                && (tcr == l4_sys::error::tcr::SECANCELED || tcr == l4_sys::error::tcr::RECANCELED);
            if was_cut && self.follows_kernel_entry(env, r[ri.ip]) {
                // l4-sys's restartable entry: rewound, so the call is made
                // again whole, with what was left of its relative timeouts
                let mut regs = r;
                let mut timeouts = Vec::new();
                let pair = l4_sys::TimeoutPair::from_raw(regs[ri.timeout]);
                for to in [pair.snd, pair.rcv] {
                    if let Some(br) = to.abs_br() {
                        let deadline = words[65 + br.min(57)];
                        timeouts.push((br as u8, deadline.saturating_sub(t0)));
                    }
                }
                regs[ri.ip] -= self.arch.restart_len();
                run_down_relative_timeouts(self.arch, &mut regs, stamp0, hz);
                let mut now = regs.clone();
                run_down_relative_timeouts(self.arch, &mut now, env.stamp_now(), hz);
                self.resume_with(env, t, &now, &fpu)?;
                saved.push(Saved { thread: t, regs, utcb: words, state: ThreadState::InKernel, fpu, timeouts });
                continue;
            }
            let again = if was_cut && self.follows_entry_instruction(env, r[ri.ip]) {
                crate::calls::reissue_after_cancel(r[ri.dest], tcr)
            } else {
                None
            };
            match again {
                Some(dest) => {
                    // it has waited at least since the cut
                    let at_cut = r[ri.abi_timeout];
                    // time in the kernel's own clock, less its tick: the
                    // stamp counter's rate wanders under emulation, and a
                    // receive must never end early
                    let waited = env.clock_us().saturating_sub(t0).saturating_sub(CLOCK_TICK_US);
                    let now_left = crate::calls::rest_of_receive_timeout(at_cut, waited);
                    self.hold(env, t, r.clone(), dest, now_left, words.clone(), fpu.clone())?;
                    let timeout = crate::calls::rest_of_receive_timeout(at_cut, 0);
                    let state = ThreadState::InCall { dest, timeout };
                    saved.push(Saved { thread: t, regs: r, utcb: words, state, fpu, timeouts: Vec::new() });
                }
                None if was_cut => {
                    self.visible_cancels += 1;
                    self.resume_with(env, t, &r, &fpu)?;
                    saved.push(Saved::running(t, r, words, fpu));
                }
                None => {
                    // the cancel found the call done: it ended after the
                    // cut, its stop not yet taken (the thread had not had
                    // the CPU). Recorded as a late stop is (step 3): a
                    // receive as not done (what it got was sent after the
                    // cut, and is sent again after a restore), a call or
                    // send as done
                    let since_cut = us_since(stamp0, env.stamp_now());
                    let state = self.after_call(env, &r, &words, since_cut);
                    self.resume_with(env, t, &r, &fpu)?;
                    saved.push(Saved { thread: t, regs: r, utcb: words, state, fpu, timeouts: Vec::new() });
                }
            }
        }
        // 5. held calls in progress at the cut: as rtcr knows them
        for (t, h) in held_at_cut {
            if saved.iter().any(|s| s.thread == t) {
                continue;
            }
            // on the kernel's clock, less its tick (as when it was issued):
            // the stamp counter's rate wanders under emulation by tens of
            // per cent, and a receive must never end early, restored or not
            let waited = t0.saturating_sub(h.since).saturating_sub(CLOCK_TICK_US);
            let timeout = crate::calls::rest_of_receive_timeout(h.timeout, waited);
            saved.push(Saved {
                thread: t,
                regs: h.cont,
                utcb: h.utcb,
                state: ThreadState::InCall { dest: h.dest, timeout },
                fpu: h.fpu,
                timeouts: Vec::new(),
            });
        }
        saved.sort_by_key(|s| s.thread);
        self.seq += 1;
        let protect_us = (u128::from(protect_ticks) * 1_000_000 / hz.max(1) as u128) as u64;
        let stats = Stats {
            seq: self.seq,
            pages_copied: copied,
            pause_us,
            threads: saved.len(),
            fpages,
            protect_us,
            copy_us: 0,
        };
        Ok((saved, stats, t0))
    }

    /// How a thread that stopped when its kernel call returned after the
    /// cut stands in the image: in that call if it was a receive that can be
    /// issued again (its sender, cut before it sent, sends again after a
    /// restore), with a timeout that ran out kept as the time it had left at
    /// the cut; after it (running) otherwise — a call or send that completed
    /// after the cut (stated in the child contract).
    fn after_call<E: Env>(&self, env: &mut E, r: &[u64], words: &[u64], since_cut_us: u64) -> ThreadState {
        let ri = regs(self.arch);
        if !self.follows_entry_instruction(env, r[ri.ip]) {
            return ThreadState::Running;
        }
        let Some(dest) = crate::calls::receive_part(r[ri.dest]) else { return ThreadState::Running };
        let tcr = words.get(123).copied().unwrap_or(0) & l4_sys::error::tcr::MASK;
        let timed_out = r[ri.tag] & 0x8000 != 0 && tcr == l4_sys::error::tcr::RETIMEOUT;
        let timeout = if timed_out {
            l4_sys::TimeoutPair::new(Timeout::NEVER, Timeout::from_us(since_cut_us)).raw()
        } else {
            crate::calls::rest_of_receive_timeout(r[ri.abi_timeout], 0)
        };
        ThreadState::InCall { dest, timeout }
    }

    /// A child holding a gate with the server right may rebind it; the
    /// label can be read back (the bound thread cannot: documented).
    fn refresh_gate_labels<E: Env>(&mut self, env: &mut E) {
        for o in self.objects.iter_mut() {
            if let ObjKind::Gate { bound, .. } = o.kind {
                if let Ok(l) = l4_sys::ipc_gate::get_infos(env, l4_sys::Cap::new(o.cap)) {
                    o.kind = ObjKind::Gate { label: l, bound };
                }
            }
        }
    }

    /// Which software IRQs hold a trigger their (stopped) thread has not
    /// taken yet. The kernel tells only on detach (`l4_irq_detach`: "was
    /// pending"), which drops the delivery; so each is bound again at once
    /// and, if one was pending, triggered again: the live child loses
    /// nothing, and the record says "pending" so that a restore raises it
    /// too. IRQs on a hardware line are left alone (their binding and mask
    /// state belong to the ICU; a level-triggered line asserts again).
    fn sample_irq_pending<E: Env>(&mut self, env: &mut E) -> Result<(), Error> {
        self.irq_pending.clear();
        let irqs: Vec<(u32, CapIdx, u64, u32)> = self
            .objects
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match o.kind {
                ObjKind::Irq { label, bound: Some(t), hw: None } => Some((i as u32, o.cap, label, t)),
                _ => None,
            })
            .collect();
        for (i, cap, label, t) in irqs {
            let q: Cap<kind::Irq> = Cap::new(cap);
            let was = irq::detach(env, q)? == irq::DetachResult::WasPending;
            irq::bind_thread(env, q, self.thread_cap(t), label)?;
            if was {
                irq::trigger(env, q)?;
                self.irq_pending.insert(i);
            }
        }
        Ok(())
    }

    /// Copies the pages of the last cut that the child has not written yet
    /// (those it wrote were copied when it did, see `resolve_fault`).
    pub fn complete<E: Env>(&mut self, env: &mut E) -> Result<usize, Error> {
        let pending: Vec<u64> = core::mem::take(&mut self.pending).into_iter().collect();
        for vpn in &pending {
            self.copy_to_shadow(env, *vpn)?;
        }
        self.sync_alias_shadows(&pending);
        self.ds_loose = self.loose_pages(env)?;
        Ok(pending.len())
    }

    /// The page as it is now becomes the shadow's copy.
    pub(crate) fn copy_to_shadow<E: Env>(&mut self, env: &mut E, vpn: u64) -> Result<(), Error> {
        let Some(p) = self.pages.get(&vpn).copied() else { return Ok(()) };
        let buf = self.shadow.entry(vpn).or_insert_with(|| alloc::vec![0u8; 4096]);
        env.read_mem(p.backing, buf)
    }

    /// The records of the cut (built from the shadow after the child runs on;
    /// call [`Self::complete`] first).
    pub fn record(&self, saved: &[Saved]) -> Checkpoint {
        let objects = self
            .objects
            .iter()
            .enumerate()
            .map(|(i, o)| match o.kind {
                ObjKind::Service(service, label) => ObjectRecord::Service { service, label },
                ObjKind::Thread(t) => ObjectRecord::Thread { thread: t },
                ObjKind::Gate { label, bound } => {
                    ObjectRecord::Gate { label, bound: bound.map(|t| self.threads[t as usize].obj) }
                }
                ObjKind::Irq { label, bound, hw } => ObjectRecord::Irq {
                    label,
                    bound: bound.map(|t| self.threads[t as usize].obj),
                    hw_line: hw,
                    pending: self.irq_pending.contains(&(i as u32)),
                },
                ObjKind::Semaphore => ObjectRecord::Semaphore { count: 0 },
                ObjKind::Dataspace(d) => {
                    let ds = &self.dataspaces[d as usize];
                    let rom =
                        ds.rom.and_then(|r| self.spec.l4re.as_ref()?.roms.get(r as usize)).map(|m| m.name.clone());
                    let loose = self.ds_loose.get(&d).cloned().unwrap_or_default();
                    ObjectRecord::Dataspace { size: ds.size, flags: ds.flags, rom, loose }
                }
            })
            .chain(self.kip_at.iter().map(|vpn| ObjectRecord::Kip { vaddr: vpn << 12 }))
            .chain(self.rm.regions().map(|r| ObjectRecord::Region {
                start: r.start,
                size: r.size,
                flags: r.flags,
                ds: r.ds.map(|d| self.dataspaces[d as usize].obj),
                offset: r.offset,
                client_cap: r.client_cap,
            }))
            .chain(self.rm.areas().map(|a| ObjectRecord::Area { start: a.start, size: a.size, flags: a.flags }))
            .collect();
        let caps = self
            .caps
            .iter()
            .map(|(&slot, c)| CapRecord { slot, object: c.obj, rights: c.rights, server: c.server })
            .collect();
        let threads = self
            .threads
            .iter()
            .enumerate()
            .map(|(i, th)| {
                let s = saved.iter().find(|s| s.thread == i as u32);
                ThreadRecord {
                    utcb: th.utcb,
                    prio: th.prio,
                    quantum_us: th.quantum,
                    pager_slot: th.pager,
                    exc_slot: th.exc_slot,
                    regs: s.map(|s| s.regs.clone()).unwrap_or_else(|| alloc::vec![0; self.arch.exc_words()]),
                    utcb_words: s.map(|s| s.utcb.clone()).unwrap_or_else(|| alloc::vec![0; 128]),
                    state: s.map(|s| s.state).unwrap_or(ThreadState::Dead),
                    fpu: s.map(|s| s.fpu.clone()).unwrap_or_default(),
                    timeouts: s.map(|s| s.timeouts.clone()).unwrap_or_default(),
                }
            })
            .collect();
        let pages = self
            .pages
            .iter()
            .filter_map(|(&vpn, p)| self.shadow.get(&vpn).map(|d| PageRecord::new(vpn << 12, p.rights, d)))
            .collect();
        let placement = (0u32..)
            .zip(&self.threads)
            .filter_map(|(t, th)| {
                th.cpu.map(|cpu| rtcr_image::record::Placement {
                    thread: t,
                    cpu,
                    affinity: (th.affinity.gran_offset, th.affinity.map),
                })
            })
            .collect();
        Checkpoint {
            child: self.spec.name.clone(),
            clock_us: 0,
            utcb_area: self.spec.utcb_area,
            objects,
            caps,
            threads,
            pages,
            placement,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::runs_to_fpages;

    #[test]
    fn runs_become_aligned_blocks() {
        let f = runs_to_fpages((0..8).map(|i| 0x1_0000_0000 + 4096 * i));
        assert_eq!(f.len(), 1);
        assert_eq!((f[0].addr(), f[0].order()), (0x1_0000_0000, 15));
        // 3 frames from an odd start: 1 + 2
        let f = runs_to_fpages([0x1000u64, 0x2000, 0x3000]);
        let got: alloc::vec::Vec<(u64, u32)> = f.iter().map(|f| (f.addr(), f.order())).collect();
        assert_eq!(got, alloc::vec![(0x1000, 12), (0x2000, 13)]);
        // gaps stay gaps
        assert_eq!(runs_to_fpages([0x4000u64, 0x6000]).len(), 2);
        // every frame covered exactly once, each block aligned to its size
        let f = runs_to_fpages((0..37u64).map(|i| 0x7000 + 4096 * i));
        let total: u64 = f.iter().map(|f| f.size() / 4096).sum();
        assert_eq!(total, 37);
        assert!(f.iter().all(|f| f.addr() % f.size() == 0));
        // 4096 pages on a 16 MiB boundary: one fpage
        let f = runs_to_fpages((0..4096u64).map(|i| 0x100_0000 + 4096 * i));
        assert_eq!(
            f.iter().map(|f| (f.addr(), f.order())).collect::<alloc::vec::Vec<_>>(),
            alloc::vec![(0x100_0000, 24)]
        );
        // runs apart: each its own blocks, and nothing between them
        let set: alloc::vec::Vec<u64> = (0..3u64).chain(8..16).map(|i| 0x10_0000 + 4096 * i).collect();
        let f = runs_to_fpages(set.iter().copied());
        let mut covered: alloc::vec::Vec<u64> =
            f.iter().flat_map(|f| (0..f.size() / 4096).map(move |i| f.addr() + 4096 * i)).collect();
        covered.sort_unstable();
        assert_eq!(covered, set);
        assert!(runs_to_fpages(core::iter::empty()).is_empty());
    }
}

#[cfg(test)]
mod stamp_tests {
    use super::stamp_hz_in_kernel_time as hz;

    #[test]
    fn the_nominal_rate_unless_the_measurement_is_more_than_two_percent_off() {
        assert_eq!(hz(1_000_000, None), 1_000_000);
        assert_eq!(hz(1_000_000, Some(1_019_000)), 1_000_000);
        assert_eq!(hz(1_000_000, Some(981_000)), 1_000_000);
        assert_eq!(hz(1_000_000, Some(1_250_000)), 1_250_000);
        assert_eq!(hz(1_000_000, Some(900_000)), 900_000);
        assert_eq!(hz(1_000_000, Some(0)), 1_000_000, "a failed measurement is ignored");
    }
}

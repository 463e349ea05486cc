//! Kernel probes: answers to the fact sheet's verify list (FIASCO-ABI.md
//! §10), measured on the kernel rtcr boots on. Run with the root-task
//! argument `probe`; each result is one `rtcr: probe …` line, so the QEMU
//! test and a person reading the serial log see the same facts.
//!
//! The probes use a second thread ("worker") in rtcr's own task, whose
//! exception handler is an IPC gate bound to the main thread — the same
//! arrangement rtcr will use for a child — so the answers carry over:
//!
//! * item 7: ex_regs TRIGGER_EXCEPTION on a thread that never ran;
//! * item 1: resuming a thread stopped in an exception by a plain send
//!   to its thread capability (instead of the reply capability);
//! * item 4: whether a parent can map a child's UTCB (ku_mem) into itself;
//! * item 3: referenced/dirty bits from an unmap with rights 0;
//! * item 6: the debugger's object dump (op 0x110) into ku_mem — only with
//!   the argument `probe-dump`: on the Fiasco build this was written
//!   against, the op trips a kernel assertion (see the issue notes);
//! * item 2 and 9 come from the boot report (`report`, src/diag.rs);
//! * restart: a thread blocked in a kernel call, cancelled and stopped
//!   (ex_regs CANCEL | TRIGGER_EXCEPTION, as a checkpoint does), moved back
//!   by `Arch::restart_len` and resumed, issues the same call again —
//!   l4-sys's restartable entry, which rtcr-core's rewind relies on;
//! * trampoline: the UTCB save/load code (src/trampoline.rs) run in the
//!   stopped worker copies its UTCB out and back exactly;
//! * item 5: FPU state travels with an exception to a handler whose BDR
//!   has INHERIT_FPU, and back with a resuming send flagged TRANSFER_FPU.

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use l4_sys::arch::CurrentThread;
use l4_sys::cap::{base, kind, Cap, CapIdx};
use l4_sys::debugger::{self, KobjDetail, KobjInfo, KobjType, KOBJ_INFO_SIZE};
use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::ipc::{self, Received};
use l4_sys::item::{Cache, SendItem};
use l4_sys::log::LogWriter;
use l4_sys::msgtag::{MsgTag, TagFlags};
use l4_sys::scheduler::{self, SchedParam};
use l4_sys::thread::{self, Control, ExRegsFlags, KEEP};
use l4_sys::{factory, sigma0, task, Kernel, Timeout, TimeoutPair};

const LOG: Cap<kind::Log> = Cap::new(base::LOG);
const ME: Cap<kind::Task> = Cap::new(base::TASK);
const MAIN: Cap<kind::Thread> = Cap::new(base::THREAD);
const EXC_GATE: CapIdx = CapIdx(0x20);
const WORKER: Cap<kind::Thread> = Cap::new(CapIdx(0x21));
const OTHER_TASK: Cap<kind::Task> = Cap::new(CapIdx(0x22));
const GATE_LABEL: u64 = 0x100;
/// UTCB area of the throw-away task of probe 4.
const OTHER_UTCB: u64 = 0xB300_0000;
/// Where probe 4 tries to map that UTCB in rtcr: no RAM there on either
/// platform, so sigma0 cannot satisfy a fault at it by accident.
const PROBE_VA: u64 = 0x10_0000_0000;
/// ku_mem rtcr adds to itself for the debugger dump (probe 6).
const DUMP_VA: u64 = 0x10_1000_0000;
const DUMP_ORDER: u32 = 16;
/// The 4 KiB page of probe 3, mapped by sigma0 away from rtcr's image.
const RD_PAGE_VA: u64 = 0x20_0000_0000;

#[cfg(target_arch = "x86_64")]
const EXC_WORDS: usize = l4_sys::exc::amd64::MSG_WORDS;
#[cfg(target_arch = "aarch64")]
const EXC_WORDS: usize = l4_sys::exc::arm64::MSG_WORDS;
#[cfg(target_arch = "x86_64")]
const START: ExRegsFlags = ExRegsFlags::empty();
#[cfg(target_arch = "aarch64")]
const START: ExRegsFlags = ExRegsFlags::ARM64_SET_EL_EL0;

/// Worker progress, written by the worker and read by main.
static STEP: AtomicU64 = AtomicU64::new(0);
static READ_VALUE: AtomicU64 = AtomicU64::new(0);

#[repr(C, align(16))]
struct Stack([u8; 16 * 1024]);
static mut WORKER_STACK: Stack = Stack([0; 16 * 1024]);

macro_rules! say {
    ($k:expr, $($arg:tt)*) => {{
        let _ = writeln!(LogWriter::new($k, LOG), $($arg)*);
    }};
}

/// The worker: announce that it runs, then read the address where probe 4
/// tried to map the other task's UTCB. If that faults, its exception goes
/// to main and the worker stays stopped.
extern "C" fn worker_entry() -> ! {
    STEP.store(1, Ordering::SeqCst);
    // SAFETY: PROBE_VA is either mapped (then the read returns what is
    // there) or not (then the kernel raises a page fault that ends as an
    // exception IPC to our handler, which never resumes this code).
    let v = unsafe { core::ptr::read_volatile(PROBE_VA as *const u64) };
    READ_VALUE.store(v, Ordering::SeqCst);
    STEP.store(2, Ordering::SeqCst);
    park()
}

/// Ends a worker entry: the worker sleeps until main stops it again.
fn park() -> ! {
    // SAFETY: the worker's only CurrentThread at this point (each entry
    // creates at most one and hands over here); its UTCB was bound by
    // thread control before it first ran.
    let mut k = unsafe { CurrentThread::new() };
    loop {
        let _ = ipc::sleep(&mut k, Timeout::NEVER);
    }
}

fn worker_stack_top() -> u64 {
    // Only the address is taken; the worker is the only user of the stack.
    let base = core::ptr::addr_of_mut!(WORKER_STACK) as u64;
    base + core::mem::size_of::<Stack>() as u64
}

fn wait_exception(k: &mut CurrentThread, ms: u64) -> Option<(Received, [u64; EXC_WORDS])> {
    match ipc::wait(k, TimeoutPair::new(Timeout::NEVER, Timeout::from_us(ms * 1000))) {
        Ok(r) if r.tag.is_exception() && r.tag.words() >= EXC_WORDS => {
            let mut regs = [0u64; EXC_WORDS];
            regs.copy_from_slice(&k.utcb().mr[..EXC_WORDS]);
            Some((r, regs))
        }
        Ok(r) => {
            say!(k, "rtcr: probe: unexpected message {:?} label {:#x}", r.tag, r.label);
            None
        }
        Err(_) => None,
    }
}

#[cfg(target_arch = "x86_64")]
fn describe(r: &[u64; EXC_WORDS]) -> (u64, u64, u64) {
    let x = l4_sys::exc::amd64::ExcRegs(*r);
    (x.trapno(), x.ip(), x.page_fault().unwrap_or(0))
}
#[cfg(target_arch = "aarch64")]
fn describe(r: &[u64; EXC_WORDS]) -> (u64, u64, u64) {
    let x = l4_sys::exc::arm64::ExcRegs(*r);
    (x.ec(), x.ip(), x.page_fault().unwrap_or(0))
}

#[cfg(target_arch = "x86_64")]
fn set_entry(r: &mut [u64; EXC_WORDS], ip: u64, sp: u64) {
    use l4_sys::exc::amd64::mr;
    r[mr::IP] = ip;
    r[mr::SP] = sp - 8; // as after a call: rsp ≡ 8 (mod 16) at entry
}
#[cfg(target_arch = "aarch64")]
fn set_entry(r: &mut [u64; EXC_WORDS], ip: u64, sp: u64) {
    use l4_sys::exc::arm64::mr;
    r[mr::PC] = ip;
    r[mr::SP] = sp;
}

/// Moves a thread stopped after a cancelled kernel call back to the start
/// of l4-sys's restartable entry, so that resuming it issues the call again.
fn rewind(r: &mut [u64; EXC_WORDS]) {
    let (_, ip, _) = describe(r);
    let back = ip - crate::env::ARCH.restart_len();
    #[cfg(target_arch = "x86_64")]
    {
        r[l4_sys::exc::amd64::mr::IP] = back;
    }
    #[cfg(target_arch = "aarch64")]
    {
        r[l4_sys::exc::arm64::mr::PC] = back;
    }
}

fn sleep_ms(k: &mut CurrentThread, ms: u64) {
    let _ = ipc::sleep(k, Timeout::from_us(ms * 1000));
}

/// Runs every probe and logs the results.
pub fn run(k: &mut CurrentThread, utcb: u64, kip: Option<u64>, dump: bool) {
    say!(k, "rtcr: probe: start");
    // rtcr above its worker so that main decides when the worker runs
    let r = scheduler::run_thread(k, Cap::new(base::SCHEDULER), MAIN, &SchedParam::prio(20));
    say!(k, "rtcr: probe: raise own priority: {:?}", r);

    probe_dirty_bits(k);
    if dump {
        probe_object_dump(k, utcb);
    }

    // the worker and its exception gate
    let setup = factory::create_gate(k, Cap::new(base::FACTORY), EXC_GATE, Some((MAIN, GATE_LABEL)))
        .and_then(|_| factory::create_thread(k, Cap::new(base::FACTORY), WORKER.idx()))
        .and_then(|_| {
            let c = Control::new().pager(base::PAGER).exc_handler(EXC_GATE).bind(utcb + 0x400, ME);
            thread::control(k, WORKER, &c)
        })
        .and_then(|_| scheduler::run_thread(k, Cap::new(base::SCHEDULER), WORKER, &SchedParam::prio(10)));
    if let Err(e) = setup {
        say!(k, "rtcr: probe: worker setup failed: {e}");
        return;
    }

    // item 7: trigger an exception on a thread that never ran
    let r = thread::ex_regs(k, WORKER, KEEP, KEEP, ExRegsFlags::TRIGGER_EXCEPTION | START);
    let exc = wait_exception(k, 200);
    match (&r, &exc) {
        (Ok(_), Some((rcv, regs))) => {
            let (trap, ip, _) = describe(regs);
            say!(
                k,
                "rtcr: probe 7 (trigger on never-run thread): exception arrives, label {:#x}, words {}, trap/EC {:#x}, ip {:#x}",
                rcv.label,
                rcv.tag.words(),
                trap,
                ip
            );
        }
        _ => say!(k, "rtcr: probe 7 (trigger on never-run thread): no exception (ex_regs {:?})", r),
    }
    let Some((_, mut regs)) = exc else { return };

    // item 4 set-up: another task, and an attempt to map its UTCB into us
    let area = Fpage::mem(OTHER_UTCB, 12, MemRights::empty());
    let map = factory::create_task(k, Cap::new(base::FACTORY), OTHER_TASK.idx(), area).and_then(|_| {
        let item = SendItem::map_mem(PROBE_VA, Fpage::mem(OTHER_UTCB, 12, MemRights::RW), Cache::Keep, false);
        task::map(k, ME, OTHER_TASK, item)
    });
    say!(k, "rtcr: probe 4: map of another task's UTCB page into rtcr answered {:?}", map);

    // item 1: resume by a plain send of the full register set to the thread cap
    set_entry(&mut regs, worker_entry as *const () as u64, worker_stack_top());
    k.utcb().mr[..EXC_WORDS].copy_from_slice(&regs);
    let tag = MsgTag::new(0, EXC_WORDS, 0, TagFlags::empty());
    let sent = ipc::send_labelled(k, WORKER.idx(), tag, 0, TimeoutPair::BOTH_ZERO);
    sleep_ms(k, 50);
    let step = STEP.load(Ordering::SeqCst);
    say!(k, "rtcr: probe 1 (resume by plain send to the thread cap): send {:?}, worker ran: {}", sent, step >= 1);
    if step == 0 {
        // the documented way: reply through the implicit reply capability
        k.utcb().mr[..EXC_WORDS].copy_from_slice(&regs);
        let rep = ipc::reply(k, tag, 0, TimeoutPair::BOTH_ZERO);
        sleep_ms(k, 50);
        say!(k, "rtcr: probe 1b (resume by reply): {:?}, worker ran: {}", rep, STEP.load(Ordering::SeqCst) >= 1);
    }

    // item 4 result: the worker's read of PROBE_VA
    match wait_exception(k, 200) {
        Some((_, regs)) => {
            let (trap, ip, pfa) = describe(&regs);
            say!(
                k,
                "rtcr: probe 4 (parent maps child UTCB): NOT mapped — worker faulted, trap/EC {:#x} at {:#x}, ip {:#x}",
                trap,
                pfa,
                ip
            );
        }
        None => say!(
            k,
            "rtcr: probe 4 (parent maps child UTCB): worker step {}, read {:#x}",
            STEP.load(Ordering::SeqCst),
            READ_VALUE.load(Ordering::SeqCst)
        ),
    }
    if let Some(kip) = kip {
        probe_restart(k, &mut regs, utcb + 0x400, kip);
        probe_trampoline(k, utcb + 0x400);
        probe_fpu(k);
    }
    say!(k, "rtcr: probe: done");
}

/// The worker's sleep in the restart probe, and how it ended.
const RESTART_SLEEP_US: u64 = 300_000;
static SLEEP_END: AtomicU64 = AtomicU64::new(0);
static SLEEP_RESULT: AtomicU64 = AtomicU64::new(0);
static KIP_ADDR: AtomicU64 = AtomicU64::new(0);

fn now_us() -> u64 {
    // SAFETY: KIP_ADDR is the KIP sigma0 mapped (read + execute) into this
    // task before the probe set it; the kernel only updates its clock.
    unsafe { l4_sys::kip::clock_us(KIP_ADDR.load(Ordering::SeqCst) as *const u8) }
}

/// The worker for the restart probe: one relative sleep; records when and
/// how it ended (1 = timed out, as a sleep should; 2 = cancelled, i.e. the
/// call was not issued again; 3 = anything else).
extern "C" fn restart_entry() -> ! {
    {
        // SAFETY: the worker's CurrentThread (gone before `park` makes the
        // next); its UTCB was bound by thread control before it first ran.
        let mut k = unsafe { CurrentThread::new() };
        STEP.store(10, Ordering::SeqCst);
        let r = ipc::sleep(&mut k, Timeout::from_us(RESTART_SLEEP_US));
        SLEEP_END.store(now_us(), Ordering::SeqCst);
        let code = match r {
            Ok(()) => 1,
            Err(l4_sys::Error::Ipc(e)) if e.code == l4_sys::error::IpcErrorCode::Canceled => 2,
            Err(_) => 3,
        };
        SLEEP_RESULT.store(code, Ordering::SeqCst);
        STEP.store(11, Ordering::SeqCst);
    }
    park()
}

/// The restart probe. `regs` is the worker's register set from its last
/// exception (it is stopped in it); `worker_utcb` its UTCB (in rtcr's own
/// task, so readable here).
fn probe_restart(k: &mut CurrentThread, regs: &mut [u64; EXC_WORDS], worker_utcb: u64, kip: u64) {
    let arch = crate::env::ARCH;
    KIP_ADDR.store(kip, Ordering::SeqCst);
    // resume the worker into its sleep
    set_entry(regs, restart_entry as *const () as u64, worker_stack_top());
    k.utcb().mr[..EXC_WORDS].copy_from_slice(regs);
    let tag = MsgTag::new(0, EXC_WORDS, 0, TagFlags::empty());
    let _ = ipc::send_labelled(k, WORKER.idx(), tag, 0, TimeoutPair::BOTH_ZERO);
    sleep_ms(k, 50);
    if STEP.load(Ordering::SeqCst) != 10 {
        say!(k, "rtcr: probe restart: worker did not reach its sleep (step {})", STEP.load(Ordering::SeqCst));
        return;
    }
    // stop it as a checkpoint does
    let r = thread::ex_regs(k, WORKER, KEEP, KEEP, ExRegsFlags::CANCEL | ExRegsFlags::TRIGGER_EXCEPTION);
    let Some((_, mut stopped)) = wait_exception(k, 200) else {
        say!(k, "rtcr: probe restart: no exception after cancel (ex_regs {:?})", r);
        return;
    };
    // SAFETY: the worker's UTCB lies in rtcr's own task at `worker_utcb`
    // (bound by thread control); the worker is stopped, so the word is
    // stable while it is read, and only read.
    let tcr = unsafe { core::ptr::read_volatile((worker_utcb + 123 * 8) as *const u64) };
    let rr = arch.restart_regs();
    #[cfg(target_arch = "x86_64")]
    let tag_out = stopped[l4_sys::exc::amd64::mr::RAX];
    #[cfg(target_arch = "aarch64")]
    let tag_out = stopped[l4_sys::exc::arm64::mr::X0];
    let timeout_kept =
        stopped[rr.timeout] == TimeoutPair::new(Timeout::NEVER, Timeout::from_us(RESTART_SLEEP_US)).raw();
    // take the time since the entry stamp off the relative timeout, as a
    // checkpoint does
    let hz = crate::env::nominal_stamp_hz(kip);
    rtcr_core::checkpoint::run_down_relative_timeouts(arch, &mut stopped, l4_sys::arch::stamp_now(), hz);
    let left = TimeoutPair::from_raw(stopped[rr.timeout]).rcv.rel_us().unwrap_or(0);
    let ran_us = RESTART_SLEEP_US.saturating_sub(left);
    // rewind to the start of the restartable entry and resume
    rewind(&mut stopped);
    k.utcb().mr[..EXC_WORDS].copy_from_slice(&stopped);
    let resumed_at = now_us();
    let _ = ipc::send_labelled(k, WORKER.idx(), tag, 0, TimeoutPair::BOTH_ZERO);
    for _ in 0..100 {
        if STEP.load(Ordering::SeqCst) == 11 {
            break;
        }
        sleep_ms(k, 10);
    }
    let result = SLEEP_RESULT.load(Ordering::SeqCst);
    let slept = SLEEP_END.load(Ordering::SeqCst).saturating_sub(resumed_at);
    say!(
        k,
        "rtcr: probe restart (cancelled call re-issued after rewinding {} bytes): {}, slept {} us after resume; \
         at the cut: tag {:#x}, TCR {:#x}, timeout still in the restart register: {}, \
         stamp says {} us of {} had run (counter {} Hz), re-issued with {} us",
        arch.restart_len(),
        match result {
            1 => "re-issued, timed out",
            2 => "NOT re-issued (cancelled)",
            0 => "worker did not finish",
            _ => "other error",
        },
        slept,
        tag_out,
        tcr,
        timeout_kept,
        ran_us,
        RESTART_SLEEP_US,
        hz,
        left
    );
}

/// The exchange page of the trampoline probe.
#[repr(C, align(4096))]
struct Exchange([u64; 128]);
static mut EXCHANGE: Exchange = Exchange([0; 128]);

fn exchange() -> *mut u64 {
    core::ptr::addr_of_mut!(EXCHANGE) as *mut u64
}

/// Points the stopped worker (registers `regs`) at the trampoline with
/// `op`, resumes it and waits for its breakpoint: returns the trap number /
/// exception class it stopped with.
fn run_trampoline(k: &mut CurrentThread, regs: &[u64; EXC_WORDS], op: u64) -> Option<u64> {
    let mut r = *regs;
    let (entry, _) = crate::trampoline::code();
    #[cfg(target_arch = "x86_64")]
    {
        use l4_sys::exc::amd64::mr;
        r[mr::IP] = entry;
        r[mr::RDI] = op;
        r[mr::RSI] = exchange() as u64;
    }
    #[cfg(target_arch = "aarch64")]
    {
        use l4_sys::exc::arm64::mr;
        r[mr::PC] = entry;
        r[mr::X0] = op;
        r[mr::X0 + 1] = exchange() as u64;
    }
    k.utcb().mr[..EXC_WORDS].copy_from_slice(&r);
    let tag = MsgTag::new(0, EXC_WORDS, 0, TagFlags::empty());
    let _ = ipc::send_labelled(k, WORKER.idx(), tag, 0, TimeoutPair::BOTH_ZERO);
    wait_exception(k, 200).map(|(_, back)| describe(&back).0)
}

/// 128 words of memory that a stopped thread shares with rtcr (its UTCB,
/// the exchange page), read and written volatile and in bounds.
struct Words(*mut u64);

impl Words {
    /// # Safety
    /// `p` must point to 128 words of this task's memory, valid for the
    /// probe's lifetime, that no Rust reference aliases.
    unsafe fn new(p: *mut u64) -> Self {
        Words(p)
    }
    fn get(&self, i: usize) -> u64 {
        assert!(i < 128);
        // SAFETY: in bounds (checked above) of the 128 words `new` was given.
        unsafe { core::ptr::read_volatile(self.0.add(i)) }
    }
    fn set(&self, i: usize, v: u64) {
        assert!(i < 128);
        // SAFETY: as in `get`.
        unsafe { core::ptr::write_volatile(self.0.add(i), v) }
    }
}

/// The trampoline probe: the worker's UTCB (in rtcr's own task, so rtcr
/// can check it directly) is saved into the exchange page and loaded back
/// from it by the trampoline running in the worker.
fn probe_trampoline(k: &mut CurrentThread, worker_utcb: u64) {
    let r = thread::ex_regs(k, WORKER, KEEP, KEEP, ExRegsFlags::CANCEL | ExRegsFlags::TRIGGER_EXCEPTION);
    let Some((_, regs)) = wait_exception(k, 200) else {
        say!(k, "rtcr: probe trampoline: the worker did not stop ({:?})", r);
        return;
    };
    // SAFETY: `worker_utcb` is the worker's 1 KiB UTCB in rtcr's own task
    // (bound by thread control), touched by nothing else while the worker
    // is stopped; the exchange page is the static above, used only here.
    let (utcb, xchg) = unsafe { (Words::new(worker_utcb as *mut u64), Words::new(exchange())) };
    for i in 0..63 {
        utcb.set(i, 0x7700_0000 + i as u64);
    }
    let saved = run_trampoline(k, &regs, 1);
    // While a thread sits in an exception the kernel keeps its own values
    // in its BDR and first buffer registers (words 64..=66) and puts the
    // thread's back when the exception is answered, so those words are
    // compared only once the thread runs again (below).
    let in_exception = 64..=66;
    let save_ok = (0..128).filter(|i| !in_exception.contains(i)).all(|i| xchg.get(i) == utcb.get(i))
        && xchg.get(5) == 0x7700_0005;
    for i in 0..128 {
        // word 63 is the UTCB's own address (the amd64 gs anchor): keep it
        xchg.set(i, if i == 63 { utcb.get(63) } else { 0x5500_0000 + i as u64 });
    }
    let loaded = run_trampoline(k, &regs, 2);
    // resume the worker where it was stopped (its cancelled sleep, issued
    // again) so the kernel hands back words 64..=66, then compare all
    let mut back = regs;
    rewind(&mut back);
    k.utcb().mr[..EXC_WORDS].copy_from_slice(&back);
    let tag = MsgTag::new(0, EXC_WORDS, 0, TagFlags::empty());
    let _ = ipc::send_labelled(k, WORKER.idx(), tag, 0, TimeoutPair::BOTH_ZERO);
    sleep_ms(k, 20);
    let load_ok = (0..128).all(|i| utcb.get(i) == xchg.get(i));
    let (_, len) = crate::trampoline::code();
    say!(
        k,
        "rtcr: probe trampoline ({len} bytes): save stopped with {:?}, UTCB copied out exactly: {save_ok}; \
         load stopped with {:?}, UTCB copied in exactly: {load_ok}",
        saved,
        loaded
    );
}

/// The FPU register the FPU probe uses: xmm15 / v31, which compiled code
/// does not touch here (x86_64-unknown-none is soft-float; on arm64 the
/// compiler's copies use the low vector registers).
const FPU_P: u64 = 0x1234_5678_9abc_def0;
const FPU_Q: u64 = 0x0fed_cba9_8765_4321;
static FPU_SEEN: AtomicU64 = AtomicU64::new(0);

/// The worker for the FPU probe: puts FPU_P into its FPU register, stops
/// at a breakpoint (an exception to main), and on resumption records what
/// the register then holds.
extern "C" fn fpu_entry() -> ! {
    let seen: u64;
    // SAFETY: moves between a general register and xmm15 / d31 around a
    // breakpoint; no memory is touched and the stack is not used. The
    // breakpoint's exception is answered by main, which resumes the thread
    // after it (x86: int3 leaves the IP past itself; arm64: main moves the
    // PC past the brk).
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!("movq xmm15, {p}", "int3", "movq {s}, xmm15", p = in(reg) FPU_P, s = out(reg) seen);
    }
    #[cfg(target_arch = "aarch64")]
    unsafe {
        core::arch::asm!("fmov d31, {p}", "brk #0", "fmov {s}, d31", p = in(reg) FPU_P, s = out(reg) seen);
    }
    FPU_SEEN.store(seen, Ordering::SeqCst);
    STEP.store(20, Ordering::SeqCst);
    park()
}

/// This thread's FPU register (xmm15 / d31): sets it to `new` if given,
/// then reads it.
pub(crate) fn own_fpu_reg(new: Option<u64>) -> u64 {
    let v: u64;
    // SAFETY: moves between xmm15 / d31 and general registers only; no
    // memory access, and nothing else of this thread uses that register.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        if let Some(n) = new {
            core::arch::asm!("movq xmm15, {n}", n = in(reg) n, options(nomem, nostack));
        }
        core::arch::asm!("movq {v}, xmm15", v = out(reg) v, options(nomem, nostack));
    }
    // SAFETY: as above.
    #[cfg(target_arch = "aarch64")]
    unsafe {
        if let Some(n) = new {
            core::arch::asm!("fmov d31, {n}", n = in(reg) n, options(nomem, nostack));
        }
        core::arch::asm!("fmov {v}, d31", v = out(reg) v, options(nomem, nostack));
    }
    v
}

/// Item 5: does the FPU state go to the exception handler and back?
fn probe_fpu(k: &mut CurrentThread) {
    let r = thread::ex_regs(k, WORKER, KEEP, KEEP, ExRegsFlags::CANCEL | ExRegsFlags::TRIGGER_EXCEPTION);
    let Some((_, mut regs)) = wait_exception(k, 200) else {
        say!(k, "rtcr: probe 5 (FPU): the worker did not stop ({:?})", r);
        return;
    };
    own_fpu_reg(Some(0));
    set_entry(&mut regs, fpu_entry as *const () as u64, worker_stack_top());
    k.utcb().mr[..EXC_WORDS].copy_from_slice(&regs);
    let tag = MsgTag::new(0, EXC_WORDS, 0, TagFlags::empty());
    let _ = ipc::send_labelled(k, WORKER.idx(), tag, 0, TimeoutPair::BOTH_ZERO);
    // take the breakpoint's exception with INHERIT_FPU
    k.utcb().bdr = l4_sys::item::Bdr::INHERIT_FPU;
    let exc = wait_exception(k, 200);
    let at_handler = own_fpu_reg(None);
    k.utcb().bdr = 0;
    #[cfg_attr(target_arch = "x86_64", allow(unused_mut))]
    let Some((rcv, mut stopped)) = exc
    else {
        say!(k, "rtcr: probe 5 (FPU): no breakpoint exception");
        return;
    };
    // give the worker FPU_Q back with a resuming send flagged TRANSFER_FPU
    #[cfg(target_arch = "aarch64")]
    {
        stopped[l4_sys::exc::arm64::mr::PC] += 4;
    }
    own_fpu_reg(Some(FPU_Q));
    k.utcb().mr[..EXC_WORDS].copy_from_slice(&stopped);
    let tag = MsgTag::new(0, EXC_WORDS, 0, TagFlags::TRANSFER_FPU);
    let sent = ipc::send_labelled(k, WORKER.idx(), tag, 0, TimeoutPair::BOTH_ZERO);
    sleep_ms(k, 20);
    let at_worker = if STEP.load(Ordering::SeqCst) == 20 { FPU_SEEN.load(Ordering::SeqCst) } else { 0 };
    say!(
        k,
        "rtcr: probe 5 (FPU): exception tag {:?}; the handler's FPU register after the exception {:#x} \
         (worker's was {:#x}): {}; resuming send with TRANSFER_FPU {:?}, the worker's register then {:#x}: {}",
        rcv.tag,
        at_handler,
        FPU_P,
        if at_handler == FPU_P { "transferred" } else { "NOT transferred" },
        sent,
        at_worker,
        if at_worker == FPU_Q { "transferred back" } else { "NOT transferred back" }
    );
}

/// Item 3: does an unmap with rights 0 report (and clear) the referenced
/// and dirty bits of a page? Measured on a 4 KiB page that sigma0 maps at a
/// virtual address of its own (rtcr's image sits in sigma0's superpages,
/// whose bits every stack access sets).
fn probe_dirty_bits(k: &mut CurrentThread) {
    let win = Fpage::mem(RD_PAGE_VA, 12, MemRights::empty());
    if let Err(e) = sigma0::map_any(k, Cap::new(base::PAGER), 12, win) {
        say!(k, "rtcr: probe 3: no page from sigma0: {e}");
        return;
    }
    let page = RD_PAGE_VA;
    let query = |k: &mut CurrentThread, rights: MemRights| {
        let fp = Fpage::mem(page, 12, rights);
        match task::unmap(k, ME, fp, task::unmap_mask::ALL_SPACES) {
            Ok(f) => match (f.referenced, f.dirty) {
                (false, false) => "--",
                (true, false) => "R-",
                (false, true) => "-D",
                (true, true) => "RD",
            },
            Err(_) => "error",
        }
    };
    let q0 = query(k, MemRights::empty());
    // SAFETY (both accesses): sigma0 just mapped one RWX page at RD_PAGE_VA
    // into this task; nothing else uses it.
    unsafe { core::ptr::write_volatile(page as *mut u64, 1) };
    let a = query(k, MemRights::empty());
    let b = query(k, MemRights::empty());
    let _ = unsafe { core::ptr::read_volatile(page as *const u64) };
    let c = query(k, MemRights::empty());
    let d = query(k, MemRights::W);
    let e = query(k, MemRights::empty());
    say!(k, "rtcr: probe 3 (R/D flags from unmap, 4K page): fresh q0={q0} write,q0={a} q0={b} read,q0={c} unmapW={d} q0={e}");
}

/// Item 6: the debugger's object dump into ku_mem, and what it says about
/// rtcr's own object space.
fn probe_object_dump(k: &mut CurrentThread, utcb: u64) {
    let dbg = Cap::new(base::DEBUGGER);
    if !matches!(task::cap_valid(k, ME, base::DEBUGGER), Ok(true)) {
        say!(k, "rtcr: probe 6: no debugger capability");
        return;
    }
    let _ = utcb;
    let add = task::add_ku_mem(k, ME, Fpage::mem(DUMP_VA, DUMP_ORDER, MemRights::RW));
    say!(k, "rtcr: probe 6: add_ku_mem {:?}", add);
    let Ok(got) = add else { return };
    let buf = got.addr();
    let size = got.size();
    // SAFETY: the kernel just mapped this ku_mem into our task RW.
    unsafe { core::ptr::write_volatile(buf as *mut u64, 0) };
    say!(k, "rtcr: probe 6: ku_mem touched at {buf:#x}, size {size:#x}");
    let mut skip = 0u64;
    let (mut mappings, mut objects) = (0u32, 0u32);
    let total_seen;
    let mut own = [0u32; 16];
    let mut n_own = 0;
    loop {
        let r = debugger::object_info(k, dbg, Cap::<kind::Task>::new(base::TASK), buf, size, skip);
        let (written, total) = match r {
            Ok(x) => x,
            Err(e) => {
                say!(k, "rtcr: probe 6: object dump failed: {e}");
                return;
            }
        };
        for i in 0..written {
            let at = buf + i * KOBJ_INFO_SIZE as u64;
            // SAFETY: the kernel wrote `written` 64-byte records into our
            // ku_mem at `buf` (the root task's UTCB page, mapped RW into it).
            let rec: &[u8; KOBJ_INFO_SIZE] = unsafe { &*(at as *const [u8; KOBJ_INFO_SIZE]) };
            let info = KobjInfo::parse(rec);
            if info.ty == KobjType::Mapping {
                mappings += 1;
                if info.space_name() == Some("rtcr") {
                    if let KobjDetail::Mapping { cap_idx, .. } = info.detail {
                        if n_own < own.len() {
                            own[n_own] = cap_idx;
                            n_own += 1;
                        }
                    }
                }
            } else {
                objects += 1;
            }
        }
        skip += written;
        if written == 0 || skip >= total {
            total_seen = total;
            break;
        }
    }
    let mut line = crate::diag::Line::new();
    for c in &own[..n_own] {
        let _ = write!(line, " {c:#x}");
    }
    say!(
        k,
        "rtcr: probe 6 (JDB object dump op 0x110): {} records ({} objects, {} mappings); rtcr's slots:{}",
        total_seen,
        objects,
        mappings,
        line.as_str()
    );
}

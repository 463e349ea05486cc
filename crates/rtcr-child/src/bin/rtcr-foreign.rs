//! rtcr-foreign: a child whose kernel entries are its own, written the way
//! a program built on L4Re's `l4sys` enters the kernel — not through
//! l4-sys's restartable entry (`l4_sys::arch::CurrentThread`), which rtcr
//! knows how to rewind. It is the check of issue 10: rtcr must be
//! transparent to code it did not write.
//!
//! * **Kernel entry.** `Foreign` implements `l4_sys::Kernel` with L4Re's
//!   register conventions, so l4-sys's protocol encoders (factory, thread,
//!   scheduler, IRQ, IPC, sigma0, log) still build the messages, but every
//!   kernel entry is this file's code. amd64: inline `syscall` with rax =
//!   tag, rdx = destination | flags, rsi = label, r8 = timeout; rax and rsi
//!   come back, rdx and rdi are declared clobbered, r8 is an input only, and
//!   rcx, r11 (sysret) and r15 are clobbered — the constraints of
//!   `l4sys/include/ARCH-amd64/L4API-l4f/ipc.h`. arm64: a call of an
//!   out-of-line `svc #0; ret` function with x0 = tag, x1 = label, x2 =
//!   destination | flags, x3 = timeout, results in x0/x1, as L4Re's weak
//!   `__l4_sys_syscall` (the caller treats every caller-saved register as
//!   clobbered). The own UTCB's address is read once per thread the way
//!   l4-sys reads it (gs:0 / TPIDRRO_EL0). A panic logs through this entry
//!   too (`rtcr_child::set_panic_hook`).
//! * **Root-task style** (the child contract): slots 1–7 as the kernel gives
//!   a root task, memory and the KIP from the pager by the sigma0 protocol,
//!   so the same binary runs as the real root task and under rtcr.
//! * **Memory, the sigma0 way.** The KIP and four "any RAM" pages (three of
//!   4 KiB, one of 16 KiB) are each received into a window of this
//!   program's choosing — one window the size of the request, at
//!   0x0180_0000 … 0x0182_0000, below the link address, not the whole
//!   address space — and used at the window's address, not at the address
//!   the pager names (the reply's hot spot), as programs using sigma0 do.
//!   The RAM is a ledger: every word holds a pattern of its address and the
//!   round, checked and rewritten every round.
//! * **Threads** (each bound to its own UTCB as `rtcr-demo` does): an
//!   entrypoint serving three IPC gates (`l4_ipc_wait`, then
//!   `l4_ipc_reply_and_wait`), checking that each gate's sequence numbers
//!   arrive exactly once and in order; a client calling the gates (checking
//!   the reply is the number + 1000) and triggering three software IRQs,
//!   each only once its last trigger was delivered; an IRQ waiter counting
//!   every delivery against the triggers. The first thread is the sleeper:
//!   20 ms receive-timeout sleeps (`l4_ipc_sleep`), each timed by the KIP
//!   clock (early: under 20 ms; late: over 35 ms), and every 25 of them a
//!   ledger round and a status line. Four threads in all, because the
//!   kernel gives a root task one page of UTCBs (four; `alloc_ku_mem` of
//!   one page in `kernel_thread-std.cpp`), and a fifth would need
//!   `l4_task_add_ku_mem`, which rtcr does not offer its children.
//! * **Output.** `foreign: started` once, every ~500 ms `foreign: round R
//!   calls C irqs I sleeps S early E late L errors X ledger ok|BAD`, and
//!   for every unexpected result `foreign: ERROR <what> <details>` (at most
//!   ten lines a round, so an error at every checkpoint cannot flood the
//!   log; all are counted). IPC errors name the raw tag register and the
//!   TCR error word.
//!
//! All the state is in statics (child memory rtcr checkpoints) and in the
//! pager's pages.
//!
//! On a host OS this file builds a tiny program that says how to build the
//! real thing.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod foreign {
    use core::fmt;
    use core::marker::PhantomData;
    use core::ptr::NonNull;
    use core::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

    use l4_sys::cap::{kind, Cap, CapIdx};
    use l4_sys::error::IpcError;
    use l4_sys::fpage::{Fpage, MemRights};
    use l4_sys::kip::Kip;
    use l4_sys::msgtag::{MsgTag, Protocol, TagFlags};
    use l4_sys::scheduler::{self, SchedParam};
    use l4_sys::sigma0::Request;
    use l4_sys::thread::{self, Control};
    use l4_sys::{factory, ipc, irq, Error, Invocation, Kernel, Outcome, Phase, Timeout, TimeoutPair, Utcb};
    use rtcr_child::foreign::{self as check, IrqState, Seq, Sleep, Status, GATE_LABELS, IRQ_LABELS, REPLY_OFFSET};
    use rtcr_child::{say, slots, Stack};

    l4_sys::root_task_entry!(crate::foreign::foreign_main);

    // ---- the kernel entry: L4Re's, not l4-sys's ----

    /// amd64: the kernel entry of L4Re's `l4_ipc()` (`ARCH-amd64/L4API-l4f/
    /// ipc.h`), with its register constraints: inputs rax (tag), rsi (label),
    /// rdx (destination | flags), r8 (timeout); outputs rax and rsi; rdx and
    /// rdi clobbered; r8 input-only, i.e. the compiler may rely on it
    /// afterwards; rcx, r11 (sysret), r15 (the kernel-isolation exit path)
    /// and memory (the UTCB) clobbered. Unlike l4-sys's entry, the inputs are
    /// put into the ABI registers by whatever the compiler emits before the
    /// `syscall`, and there is no entry stamp. Returns (tag, label, r8 after
    /// the call): the one instruction after `syscall` reads r8 back, only to
    /// check the kernel (and rtcr) keep it as L4Re's binding assumes.
    ///
    /// # Safety
    /// The calling thread's UTCB must not be borrowed: the kernel reads and
    /// writes it.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    unsafe fn l4re_ipc(dest: u64, tag: u64, label: u64, timeout: u64) -> (u64, u64, u64) {
        let (tag_out, label_out, r8_after): (u64, u64, u64);
        // SAFETY: the caller upholds the UTCB rule above. The kernel does not
        // use the user stack (nostack); every register it may change is an
        // output or a clobber here, exactly as in L4Re's binding.
        unsafe {
            core::arch::asm!(
                "syscall",
                "mov {r8_after}, r8",
                r8_after = out(reg) r8_after,
                inout("rax") tag => tag_out,
                inout("rsi") label => label_out,
                inout("rdx") dest => _,
                in("r8") timeout,
                out("rdi") _,
                out("rcx") _,
                out("r11") _,
                out("r15") _,
                options(nostack),
            );
        }
        (tag_out, label_out, r8_after)
    }

    // arm64: L4Re's weak `__l4_sys_syscall` (`l4sys/lib/src/ARCH-arm64/
    // syscall.S`), under a name of its own: the four inputs arrive in x0–x3
    // by the C calling convention, the kernel's results leave in x0/x1 as
    // the returned 16-byte struct.
    #[cfg(target_arch = "aarch64")]
    core::arch::global_asm!(
        ".pushsection .text.rtcr_foreign_syscall, \"ax\", %progbits",
        ".balign 4",
        ".global rtcr_foreign_syscall",
        ".type rtcr_foreign_syscall, %function",
        "rtcr_foreign_syscall:",
        "    svc #0",
        "    ret",
        ".size rtcr_foreign_syscall, . - rtcr_foreign_syscall",
        ".popsection",
    );

    /// What `rtcr_foreign_syscall` returns in x0/x1 (`struct
    /// __l4_sys_syscall_res`).
    #[cfg(target_arch = "aarch64")]
    #[repr(C)]
    struct SyscallRes {
        tag: u64,
        label: u64,
    }

    #[cfg(target_arch = "aarch64")]
    extern "C" {
        /// `svc #0; ret` (above): x0 tag, x1 label, x2 destination | flags,
        /// x3 timeout.
        fn rtcr_foreign_syscall(tag: u64, label: u64, dest: u64, timeout: u64) -> SyscallRes;
    }

    /// arm64: the kernel entry as L4Re's `l4_ipc()` makes it, a call of the
    /// out-of-line function. Returns (tag, label, the timeout again: there is
    /// no register to check, x3 is caller-saved).
    ///
    /// # Safety
    /// The calling thread's UTCB must not be borrowed: the kernel reads and
    /// writes it.
    #[cfg(target_arch = "aarch64")]
    #[inline(always)]
    unsafe fn l4re_ipc(dest: u64, tag: u64, label: u64, timeout: u64) -> (u64, u64, u64) {
        // SAFETY: the caller upholds the UTCB rule above; the function is
        // `svc #0; ret`, entered by the C calling convention, so the compiler
        // treats every caller-saved register and all memory as changed.
        let r = unsafe { rtcr_foreign_syscall(tag, label, dest, timeout) };
        (r.tag, r.label, timeout)
    }

    /// Kernel entries after which r8 (amd64) no longer held the timeout.
    static R8_CHANGED: AtomicU64 = AtomicU64::new(0);

    /// The running thread, entering the kernel through [`l4re_ipc`].
    ///
    /// Not `Send`: a UTCB belongs to one thread. One `Foreign` per thread.
    struct Foreign {
        utcb: NonNull<Utcb>,
        /// The tag register as the last kernel entry returned it, raw (the
        /// error reports show it: what a cancelled call leaves there).
        last_tag: u64,
        _not_send: PhantomData<*mut ()>,
    }

    impl Foreign {
        /// The handle of the calling thread.
        ///
        /// # Safety
        /// The caller must run on a thread bound to a UTCB and must not make
        /// a second `Foreign` on it while this one lives.
        unsafe fn current() -> Self {
            // SAFETY: the CurrentThread only reads the own UTCB's address
            // the way l4-sys does (gs:0 / TPIDRRO_EL0) and is dropped at once,
            // never entering the kernel; no other CurrentThread lives on this
            // thread (this program makes none elsewhere).
            let at = unsafe { l4_sys::arch::CurrentThread::new() }.utcb_addr();
            let Some(utcb) = NonNull::new(at as *mut Utcb) else { rtcr_child::crash() };
            Foreign { utcb, last_tag: 0, _not_send: PhantomData }
        }

        fn utcb_addr(&self) -> u64 {
            self.utcb.as_ptr() as u64
        }
    }

    impl Kernel for Foreign {
        fn utcb(&mut self) -> &mut Utcb {
            // SAFETY: the pointer is this thread's UTCB, valid for its
            // lifetime; `&mut self` makes this the only live reference, and
            // the kernel writes it only during this thread's own kernel
            // entries, which need `&mut self` too.
            unsafe { self.utcb.as_mut() }
        }

        fn invoke(&mut self, inv: Invocation) -> Outcome {
            let timeout = inv.timeout.raw();
            // SAFETY: no Rust reference into the UTCB lives (we hold
            // `&mut self`, through which alone it is reached).
            let (tag, label, r8) = unsafe { l4re_ipc(inv.dest, inv.tag.0, inv.label, timeout) };
            if r8 != timeout {
                R8_CHANGED.fetch_add(1, Relaxed);
            }
            self.last_tag = tag;
            Outcome { tag: MsgTag(tag), label }
        }
    }

    // ---- layout ----

    /// The entrypoint, client and IRQ waiter threads.
    const T_ENTRY: CapIdx = CapIdx(0x10);
    const T_CLIENT: CapIdx = CapIdx(0x11);
    const T_WAITER: CapIdx = CapIdx(0x12);
    /// The threads main starts: slot, function, priority.
    const THREADS: [(CapIdx, extern "C" fn() -> !, u64); 3] =
        [(T_ENTRY, entrypoint, 12), (T_CLIENT, client, 11), (T_WAITER, irq_waiter, 13)];
    /// Main's priority, the highest, so its sleeps are timed by the kernel,
    /// not by the other threads (a root task starts at priority 1).
    const MAIN_PRIO: u64 = 14;
    /// The gates (labels [`GATE_LABELS`], bound to the entrypoint).
    const GATES: [CapIdx; 3] = [CapIdx(0x20), CapIdx(0x21), CapIdx(0x22)];
    /// The software IRQs (labels [`IRQ_LABELS`], bound to the IRQ waiter).
    const IRQS: [CapIdx; 3] = [CapIdx(0x30), CapIdx(0x31), CapIdx(0x32)];

    /// Where the KIP is received: a one-page window of this program's
    /// choosing, below its link address.
    const KIP_WINDOW: u64 = 0x0180_0000;
    /// The ledger's RAM: each request's own receive window (address, log2
    /// size = the size asked for), next to the KIP's, a page apart so a page
    /// that lands one off is not mistaken for the next.
    const RAM: [(u64, u32); 4] = [(0x0181_0000, 12), (0x0181_2000, 12), (0x0181_4000, 12), (0x0182_0000, 14)];

    /// Bytes of stack per started thread.
    const STACK_BYTES: usize = 16 * 1024;
    static STACKS: [Stack<STACK_BYTES>; 3] = [const { Stack::new() }; 3];

    /// A message of one untyped word, protocol label 0.
    const ONE_WORD: MsgTag = MsgTag::new(0, 1, 0, TagFlags::empty());
    /// Main's pace: one ledger round and status line per this many sleeps
    /// (about 500 ms).
    const SLEEPS_PER_ROUND: u64 = 25;
    /// The client's pace between rounds of calls and triggers.
    const CLIENT_US: u64 = 10_000;
    /// How long a trigger may stay undelivered before it counts as lost.
    const IRQ_LOST_US: u64 = 2_000_000;
    /// At most this many ERROR lines per round (the rest are only counted),
    /// so that an error repeating at every checkpoint cannot flood the log.
    const ERROR_LINES_PER_ROUND: u64 = 10;

    // ---- state (child memory) ----

    static KIP_MAPPED: AtomicBool = AtomicBool::new(false);
    static RAM_MAPPED: [AtomicBool; 4] = [const { AtomicBool::new(false) }; 4];
    /// The ledger round whose pattern the RAM holds.
    static ROUND: AtomicU64 = AtomicU64::new(0);
    static LEDGER_OK: AtomicBool = AtomicBool::new(true);
    /// Per gate: the client's last number answered (or sent, if its reply
    /// was lost), and the server's last number seen.
    static CALLED: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
    static SERVED: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
    static CALLS: AtomicU64 = AtomicU64::new(0);
    /// Per IRQ: triggers sent, deliveries, and when the outstanding one was
    /// sent (KIP clock, µs).
    static TRIGGERED: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
    static DELIVERED: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
    static TRIGGERED_AT: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];
    static SLEEPS: AtomicU64 = AtomicU64::new(0);
    static EARLY: AtomicU64 = AtomicU64::new(0);
    static LATE: AtomicU64 = AtomicU64::new(0);
    static ERRORS: AtomicU64 = AtomicU64::new(0);
    /// ERROR lines left in this round.
    static LINES_LEFT: AtomicU64 = AtomicU64::new(ERROR_LINES_PER_ROUND);

    // ---- reporting ----

    /// Counts an unexpected result and prints `foreign: ERROR <what>
    /// <details>` while this round's budget of lines lasts.
    fn error(k: &mut Foreign, what: &str, details: fmt::Arguments<'_>) {
        ERRORS.fetch_add(1, Relaxed);
        if LINES_LEFT.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1)).is_ok() {
            say!(k, "foreign: ERROR {what} {details}");
        }
    }

    /// An IPC that failed: the error, the raw tag register and the TCR, read
    /// before the log write enters the kernel again.
    fn ipc_error(k: &mut Foreign, what: &str, e: Error, context: fmt::Arguments<'_>) {
        let (tag, tcr) = (k.last_tag, k.utcb().tcr_error);
        error(k, what, format_args!("{context}: {e} (tag {tag:#x} TCR {tcr:#x})"));
    }

    /// The kernel clock (µs) through the KIP window, if the KIP came.
    fn now_us() -> Option<u64> {
        if KIP_MAPPED.load(Relaxed) {
            // SAFETY: the pager mapped the KIP into KIP_WINDOW (checked by
            // `Kip::parse` there), executable as sigma0 maps it; its clock
            // routine is position independent.
            Some(unsafe { l4_sys::kip::clock_us(KIP_WINDOW as *const u8) })
        } else {
            None
        }
    }

    /// `l4_ipc_sleep(l4_timeout(NEVER, rel(us)))`, checked: only the receive
    /// timeout is the expected end.
    fn sleep_checked(k: &mut Foreign, us: u64, who: &str) -> Result<(), Error> {
        let r = ipc::sleep(k, Timeout::from_us(us));
        if let Err(e) = r {
            ipc_error(k, "sleep", e, format_args!("{who}: {us} us"));
        }
        r
    }

    fn sum(counts: &[AtomicU64]) -> u64 {
        counts.iter().map(|c| c.load(Relaxed)).sum()
    }

    fn status() -> Status {
        Status {
            round: ROUND.load(Relaxed),
            calls: CALLS.load(Relaxed),
            irqs: sum(&DELIVERED),
            sleeps: SLEEPS.load(Relaxed),
            early: EARLY.load(Relaxed),
            late: LATE.load(Relaxed),
            errors: ERRORS.load(Relaxed),
            ledger_ok: LEDGER_OK.load(Relaxed),
        }
    }

    /// The panic routine (`rtcr_child::set_panic_hook`): logs through this
    /// program's own entry and stops the thread.
    fn panicked(info: &core::panic::PanicInfo<'_>) -> ! {
        // SAFETY: the panicking thread never returns to the code holding its
        // Foreign (panic = abort, this function diverges), so that one is
        // never used again; this is the only one from here on.
        let mut k = unsafe { Foreign::current() };
        say!(&mut k, "foreign: ERROR panic {info}");
        loop {
            let _ = ipc::sleep(&mut k, Timeout::NEVER);
        }
    }

    // ---- memory from the pager ----

    /// Sends a sigma0 request (l4-sys's encoding) to the pager and receives
    /// the one map item into `window`. Returns the control word of the
    /// received item: the address the pager named (bits 12+) and the sent
    /// fpage's order (bits 6–11) and result kind (bits 1–2, 0 = mapped).
    fn pager_request(k: &mut Foreign, r: Request, window: Fpage) -> Result<u64, Error> {
        let (w, n) = r.encode();
        let u = k.utcb();
        u.bdr = 0;
        u.br[0] = l4_sys::item::ITEM_MAP;
        u.br[1] = window.0;
        u.mr[..n].copy_from_slice(&w[..n]);
        let got = ipc::call(k, slots::PAGER.idx(), MsgTag::proto(Protocol::Sigma0, n, 0), TimeoutPair::NEVER)?;
        let tag = l4_sys::error::check(got.tag, k.utcb().tcr_error)?;
        ipc::expect(tag, 0, 1)?;
        Ok(k.utcb().mr[tag.words()])
    }

    /// A page (or pages) of 2^order bytes received into `window`: checks
    /// the item says it was mapped, and whole.
    fn received(k: &mut Foreign, what: &str, window: u64, order: u32, r: Result<u64, Error>) -> bool {
        match r {
            Ok(item) => {
                let (named, sent_order, result) = (item & !0xfff, ((item >> 6) & 0x3f) as u32, (item >> 1) & 3);
                say!(k, "foreign: {what} received at window {window:#x} (pager named {named:#x}, order {sent_order})");
                if result != 0 || sent_order < order {
                    error(
                        k,
                        "pager",
                        format_args!("{what}: item {item:#x}: not mapped whole into the 2^{order} window"),
                    );
                    return false;
                }
                true
            }
            Err(e) => {
                ipc_error(k, "pager", e, format_args!("{what} into window {window:#x}"));
                false
            }
        }
    }

    fn get_memory(k: &mut Foreign) {
        let window = Fpage::mem(KIP_WINDOW, 12, MemRights::empty());
        let r = pager_request(k, Request::Kip, window);
        if received(k, "KIP", KIP_WINDOW, 12, r) {
            // SAFETY: the KIP page (4 KiB, readable) was just mapped whole
            // into KIP_WINDOW; the kernel changes only its clock word.
            let page = unsafe { core::slice::from_raw_parts(KIP_WINDOW as *const u8, 4096) };
            match Kip::parse(page) {
                Ok(_) => KIP_MAPPED.store(true, Relaxed),
                Err(e) => error(k, "KIP", format_args!("the page in window {KIP_WINDOW:#x} is no KIP: {e:?}")),
            }
        }
        for (i, &(at, order)) in RAM.iter().enumerate() {
            let r = pager_request(k, Request::AnyRam { order }, Fpage::mem(at, order, MemRights::empty()));
            if received(k, "RAM", at, order, r) {
                RAM_MAPPED[i].store(true, Relaxed);
            }
        }
        ledger(|words, base| check::fill(words, base, 0));
    }

    /// Calls `f` with every ledger page that was mapped, as words at their
    /// window address.
    fn ledger(mut f: impl FnMut(&mut [u64], u64)) {
        for (i, &(at, order)) in RAM.iter().enumerate() {
            if RAM_MAPPED[i].load(Relaxed) {
                // SAFETY: the pager mapped 2^order bytes of RAM read-write
                // whole into this window (checked in `received`); only main
                // touches them, and no other reference to them exists.
                let words = unsafe { core::slice::from_raw_parts_mut(at as *mut u64, (1usize << order) / 8) };
                f(words, at);
            }
        }
    }

    /// One ledger round: each page must hold the last round's pattern; then
    /// it gets this round's. The KIP must still be in its window.
    fn ledger_round(k: &mut Foreign) {
        let last = ROUND.load(Relaxed);
        let mut bad = None;
        ledger(|words, base| {
            if let Some(m) = check::check(words, base, last) {
                bad.get_or_insert((base, m));
            }
            check::fill(words, base, last + 1);
        });
        ROUND.store(last + 1, Relaxed);
        if let Some((base, m)) = bad {
            LEDGER_OK.store(false, Relaxed);
            let (at, want, got, n) = (m.addr, m.want, m.got, m.count);
            error(
                k,
                "ledger",
                format_args!("page {base:#x} round {last}: {n} words wrong, {at:#x} holds {got:#x} not {want:#x}"),
            );
        }
        if KIP_MAPPED.load(Relaxed) {
            // SAFETY: as in `get_memory`: the KIP is mapped in its window.
            let magic = unsafe { (KIP_WINDOW as *const u32).read_volatile() };
            if magic != l4_sys::kip::MAGIC {
                LEDGER_OK.store(false, Relaxed);
                error(k, "KIP", format_args!("window {KIP_WINDOW:#x} holds {magic:#x}, not the KIP magic"));
            }
        }
    }

    // ---- set-up and main ----

    /// A set-up step that failed: what, on which slot, and why.
    struct Failed(&'static str, CapIdx, Error);

    fn set_up(k: &mut Foreign) -> Result<(), Failed> {
        let first_utcb = k.utcb_addr();
        for (i, &(slot, _, _)) in THREADS.iter().enumerate() {
            factory::create_thread(k, slots::FACTORY, slot).map_err(|e| Failed("create thread", slot, e))?;
            let utcb = first_utcb + rtcr_child::UTCB_SIZE * (i as u64 + 1);
            let c = Control::new().pager(slots::PAGER.idx()).exc_handler(slots::PAGER.idx()).bind(utcb, slots::TASK);
            thread::control(k, Cap::new(slot), &c).map_err(|e| Failed("thread control", slot, e))?;
        }
        for (&gate, &label) in GATES.iter().zip(&GATE_LABELS) {
            factory::create_gate(k, slots::FACTORY, gate, Some((Cap::new(T_ENTRY), label)))
                .map_err(|e| Failed("create gate", gate, e))?;
        }
        for (&q, &label) in IRQS.iter().zip(&IRQ_LABELS) {
            factory::create_irq(k, slots::FACTORY, q).map_err(|e| Failed("create IRQ", q, e))?;
            irq::bind_thread(k, irq_cap(q), Cap::new(T_WAITER), label).map_err(|e| Failed("bind IRQ", q, e))?;
        }
        scheduler::run_thread(k, slots::SCHEDULER, slots::THREAD, &SchedParam::prio(MAIN_PRIO))
            .map_err(|e| Failed("run thread", slots::THREAD.idx(), e))?;
        for (i, &(slot, entry, prio)) in THREADS.iter().enumerate() {
            scheduler::run_thread(k, slots::SCHEDULER, Cap::new(slot), &SchedParam::prio(prio))
                .map_err(|e| Failed("run thread", slot, e))?;
            let sp = STACKS[i].initial_sp();
            thread::ex_regs(k, Cap::new(slot), entry as usize as u64, sp, rtcr_child::start_flags())
                .map_err(|e| Failed("start thread", slot, e))?;
        }
        Ok(())
    }

    fn irq_cap(slot: CapIdx) -> Cap<kind::Irq> {
        Cap::new(slot)
    }

    /// The first thread: memory, threads, then the sleeper, with a ledger
    /// round and a status line every [`SLEEPS_PER_ROUND`] sleeps.
    pub extern "C" fn foreign_main() -> ! {
        rtcr_child::set_panic_hook(panicked);
        // SAFETY: the task's first thread, bound to its UTCB by the kernel
        // or rtcr; the only Foreign made on it (the panic hook makes another
        // only once this one can never run again).
        let mut k = unsafe { Foreign::current() };
        let k = &mut k;
        say!(k, "foreign: started");
        get_memory(k);
        match set_up(k) {
            Ok(()) => say!(k, "foreign: set up: 4 threads, 3 gates, 3 IRQs, UTCB at {:#x}", k.utcb_addr()),
            Err(Failed(what, slot, e)) => ipc_error(k, "set-up", e, format_args!("{what} {:#x}", slot.0)),
        }
        loop {
            if sleep_timed(k).is_multiple_of(SLEEPS_PER_ROUND) {
                ledger_round(k);
                let changed = R8_CHANGED.swap(0, Relaxed);
                if changed != 0 {
                    let what = "r8 (the timeout, input-only in L4Re's binding) changed in";
                    error(k, "entry", format_args!("{what} {changed} kernel entries"));
                }
                say!(k, "foreign: {}", status());
                LINES_LEFT.store(ERROR_LINES_PER_ROUND, Relaxed);
            }
        }
    }

    // ---- the threads ----

    /// Serves the gates: open wait, then reply-and-wait, as an L4Re server
    /// loop does (the reply with send timeout 0).
    extern "C" fn entrypoint() -> ! {
        // SAFETY: this thread runs only this function; its one Foreign.
        let mut k = unsafe { Foreign::current() };
        let k = &mut k;
        let mut got = ipc::wait(k, TimeoutPair::NEVER);
        loop {
            got = match got {
                Err(e) => {
                    ipc_error(k, "server", e, format_args!("wait/reply"));
                    ipc::wait(k, TimeoutPair::NEVER)
                }
                Ok(r) => match check::index_of(&GATE_LABELS, r.label) {
                    Some(g) => {
                        let n = if r.tag.words() >= 1 { k.utcb().mr[0] } else { 0 };
                        let last = SERVED[g].load(Relaxed);
                        match Seq::of(last, n) {
                            Seq::Next => {}
                            Seq::Repeated => error(
                                k,
                                "server",
                                format_args!("gate {:#x}: call {n} arrived again (last {last})", GATE_LABELS[g]),
                            ),
                            Seq::Skipped => error(
                                k,
                                "server",
                                format_args!("gate {:#x}: call {n} after {last}: calls lost", GATE_LABELS[g]),
                            ),
                        }
                        SERVED[g].store(n, Relaxed);
                        k.utcb().mr[0] = n.wrapping_add(REPLY_OFFSET);
                        ipc::reply_and_wait(k, ONE_WORD, 0, TimeoutPair::SEND_ZERO)
                    }
                    None => {
                        let (l, t) = (r.label, r.tag.0);
                        error(k, "server", format_args!("unexpected label {l:#x} tag {t:#x}"));
                        ipc::wait(k, TimeoutPair::NEVER)
                    }
                },
            };
        }
    }

    /// Calls each gate with its next number, then triggers each IRQ whose
    /// last trigger was delivered, every [`CLIENT_US`].
    extern "C" fn client() -> ! {
        // SAFETY: this thread runs only this function; its one Foreign.
        let mut k = unsafe { Foreign::current() };
        let k = &mut k;
        loop {
            for (g, &gate) in GATES.iter().enumerate() {
                call_gate(k, g, gate);
            }
            for i in 0..IRQS.len() {
                trigger_irq(k, i);
            }
            let _ = sleep_checked(k, CLIENT_US, "client");
        }
    }

    fn call_gate(k: &mut Foreign, g: usize, gate: CapIdx) {
        let label = GATE_LABELS[g];
        let n = CALLED[g].load(Relaxed).wrapping_add(1);
        k.utcb().mr[0] = n;
        match ipc::call(k, gate, ONE_WORD, TimeoutPair::NEVER) {
            Ok(r) => {
                CALLED[g].store(n, Relaxed);
                let got = if r.tag.words() >= 1 { Some(k.utcb().mr[0]) } else { None };
                if got == Some(n.wrapping_add(REPLY_OFFSET)) {
                    CALLS.fetch_add(1, Relaxed);
                } else {
                    let t = r.tag.0;
                    error(k, "client", format_args!("gate {label:#x} call {n}: reply {got:?} (tag {t:#x})"));
                }
            }
            Err(e) => {
                // cut after its send phase, the server has it: go on from it
                if matches!(e, Error::Ipc(IpcError { phase: Phase::Receive, .. })) {
                    CALLED[g].store(n, Relaxed);
                }
                ipc_error(k, "client", e, format_args!("gate {label:#x} call {n}"));
            }
        }
    }

    fn trigger_irq(k: &mut Foreign, i: usize) {
        let label = IRQ_LABELS[i];
        let (sent, got) = (TRIGGERED[i].load(Relaxed), DELIVERED[i].load(Relaxed));
        match IrqState::of(sent, got) {
            IrqState::Delivered => {
                // counted before the trigger: the waiter may run at once
                TRIGGERED[i].store(sent + 1, Relaxed);
                TRIGGERED_AT[i].store(now_us().unwrap_or(0), Relaxed);
                if let Err(e) = irq::trigger(k, irq_cap(IRQS[i])) {
                    TRIGGERED[i].store(sent, Relaxed);
                    ipc_error(k, "client", e, format_args!("trigger IRQ {label:#x} #{}", sent + 1));
                }
            }
            IrqState::Outstanding => {
                let since = TRIGGERED_AT[i].load(Relaxed);
                if let Some(now) = now_us() {
                    if now.saturating_sub(since) > IRQ_LOST_US {
                        let ms = (now - since) / 1000;
                        error(k, "irq", format_args!("IRQ {label:#x} trigger #{sent} not delivered after {ms} ms"));
                        // report it again only after another wait
                        TRIGGERED_AT[i].store(now, Relaxed);
                    }
                }
            }
            IrqState::Broken => {
                error(k, "irq", format_args!("IRQ {label:#x}: {sent} triggers, {got} deliveries"));
                TRIGGERED[i].store(sent.max(got), Relaxed);
            }
        }
    }

    /// Receives the IRQs; each delivery must be of a trigger not yet
    /// delivered.
    extern "C" fn irq_waiter() -> ! {
        // SAFETY: this thread runs only this function; its one Foreign.
        let mut k = unsafe { Foreign::current() };
        let k = &mut k;
        loop {
            match ipc::wait(k, TimeoutPair::NEVER) {
                Ok(r) => match check::index_of(&IRQ_LABELS, r.label) {
                    Some(i) => {
                        let (sent, got) = (TRIGGERED[i].load(Relaxed), DELIVERED[i].load(Relaxed));
                        if !IrqState::delivery_expected(sent, got) {
                            let label = IRQ_LABELS[i];
                            error(
                                k,
                                "irq",
                                format_args!("IRQ {label:#x} delivered {} times, triggered {sent}", got + 1),
                            );
                        }
                        DELIVERED[i].store(got + 1, Relaxed);
                    }
                    None => {
                        let (l, t) = (r.label, r.tag.0);
                        error(k, "irq waiter", format_args!("unexpected label {l:#x} tag {t:#x}"));
                    }
                },
                Err(e) => ipc_error(k, "irq waiter", e, format_args!("wait")),
            }
        }
    }

    /// One 20 ms sleep, timed by the KIP clock; returns the sleeps so far.
    fn sleep_timed(k: &mut Foreign) -> u64 {
        let t0 = now_us();
        let r = sleep_checked(k, check::SLEEP_US, "sleeper");
        let t1 = now_us();
        let n = SLEEPS.fetch_add(1, Relaxed) + 1;
        if let (Some(t0), Some(t1)) = (t0, t1) {
            let took = t1.saturating_sub(t0);
            match Sleep::of(took) {
                Sleep::Early => {
                    EARLY.fetch_add(1, Relaxed);
                    if r.is_ok() {
                        error(k, "sleep", format_args!("20 ms sleep ended after {took} us"));
                    }
                }
                Sleep::Late => {
                    LATE.fetch_add(1, Relaxed);
                }
                Sleep::OnTime => {}
            }
        }
        n
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "rtcr-foreign is a child for rtcr (or a Fiasco.OC root task) with its own kernel entry: build it with\n  \
         cargo build --release -p rtcr-child --bin rtcr-foreign --target x86_64-unknown-none\n  \
         cargo build --release -p rtcr-child --bin rtcr-foreign --target aarch64-unknown-none\n\
         and boot it with scripts/qemu-boot.sh --elf target/<target>/release/rtcr-foreign, or give it to rtcr."
    );
    std::process::exit(2);
}

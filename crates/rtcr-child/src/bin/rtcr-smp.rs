//! rtcr-smp: a child whose threads run on different CPUs at once (issue 13).
//!
//! It uses only the child contract (slots 1–7). Main asks the scheduler
//! which CPUs there are and places four threads, each on a CPU of its own
//! where there are four (`l4_scheduler_run_thread` with a one-CPU set):
//!
//! * the server (slot 0x10, CPU 1) answers gate 0x20 (label 0x100): each
//!   request carries the next call number, which it checks is exactly one
//!   more than the last it saw (a call lost or made twice is reported), and
//!   answers `7 × n`;
//! * the client (0x11, CPU 2) calls the server, checks the answer, then
//!   triggers IRQ 0x30 (label 0x1020) and waits until the IRQ waiter has
//!   taken exactly that trigger;
//! * the IRQ waiter (0x12, CPU 0) counts deliveries and reports one it
//!   gets before its trigger was counted;
//! * the writer (0x13, CPU 3) keeps a counter in eight pages and its
//!   mirror (3 × counter) in .bss, checking before each update that all
//!   nine agree (a cut taken while it ran would break that).
//!
//! Every thread also checks now and then that it runs where it asked: it
//! spins for 20 ms of the kernel clock and reads its CPU's idle time
//! (`l4_scheduler_idle_time`) before and after; a CPU someone spins on is
//! not idle. On an ECU without that CPU (a restore on fewer CPUs) it says
//! so once and skips the check.
//!
//! Main logs one status line a second. All state is in statics, i.e.
//! child memory rtcr checkpoints. Booted as the Fiasco root task instead,
//! it talks to the kernel's objects directly.
//!
//! On a host OS this file builds a tiny program that says how to build the
//! real thing.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod smp {
    use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

    use l4_sys::arch::CurrentThread;
    use l4_sys::cap::{kind, Cap, CapIdx};
    use l4_sys::fpage::{Fpage, MemRights};
    use l4_sys::msgtag::{MsgTag, TagFlags};
    use l4_sys::scheduler::{self, CpuSet, SchedParam};
    use l4_sys::thread::{self, Control};
    use l4_sys::{factory, ipc, irq, sigma0, Error, Kernel, Timeout, TimeoutPair};
    use rtcr_child::{say, slots, Stack};

    l4_sys::root_task_entry!(crate::smp::smp_main);

    /// The four threads: slot, name, the CPU each asks for where there
    /// are four, priority.
    const SERVER: usize = 0;
    const CLIENT: usize = 1;
    const WAITER: usize = 2;
    const WRITER: usize = 3;
    const THREADS: [(CapIdx, &str, u32, u64); 4] = [
        (CapIdx(0x10), "server", 1, 12),
        (CapIdx(0x11), "client", 2, 11),
        (CapIdx(0x12), "irq waiter", 0, 12),
        (CapIdx(0x13), "writer", 3, 10),
    ];
    const GATE: CapIdx = CapIdx(0x20);
    const GATE_LABEL: u64 = 0x100;
    const IRQ: CapIdx = CapIdx(0x30);
    const IRQ_LABEL: u64 = 0x1020;

    const STACK_BYTES: usize = 16 * 1024;
    static STACKS: [Stack<STACK_BYTES>; 4] = [const { Stack::new() }; 4];

    /// The CPU each thread asked for (set once by main).
    static CPU: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
    /// Where the pager put the KIP.
    static KIP_AT: AtomicU64 = AtomicU64::new(0);
    /// Calls the server answered, the last call number it saw; calls the
    /// client completed.
    static SERVED: AtomicU64 = AtomicU64::new(0);
    static LAST_SEEN: AtomicU64 = AtomicU64::new(0);
    static CALLS: AtomicU64 = AtomicU64::new(0);
    /// IRQ triggers the client counted (before each trigger) and deliveries
    /// the waiter took.
    static TRIGGERS: AtomicU64 = AtomicU64::new(0);
    static TRIGGER_TIMEOUTS: AtomicU64 = AtomicU64::new(0);
    static DELIVERED: AtomicU64 = AtomicU64::new(0);
    /// The writer's rounds.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    /// Per thread: placement checks passed, and failed.
    static ON_CPU: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
    static OFF_CPU: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];
    /// Problems seen (each is also logged).
    static PROBLEMS: AtomicU64 = AtomicU64::new(0);

    /// The writer's eight pages and the mirror.
    #[repr(C, align(4096))]
    struct Pages([[AtomicU64; 512]; 8]);
    static PAGES: Pages = Pages([const { [const { AtomicU64::new(0) }; 512] }; 8]);
    static MIRROR: AtomicU64 = AtomicU64::new(0);

    const ONE_WORD: MsgTag = MsgTag::new(0, 1, 0, TagFlags::empty());

    fn problem(k: &mut CurrentThread, args: core::fmt::Arguments<'_>) {
        PROBLEMS.fetch_add(1, Relaxed);
        say!(k, "smp: PROBLEM {args}");
    }

    /// The kernel clock (µs), read from the KIP.
    fn now_us() -> u64 {
        // SAFETY: main mapped the KIP at KIP_AT before it started any thread
        // that calls this, executable as sigma0 (and rtcr in its place) maps
        // it; its clock routine is position independent.
        unsafe { l4_sys::kip::clock_us(KIP_AT.load(Relaxed) as *const u8) }
    }

    /// Checks that thread `me` runs on the CPU it asked for: it spins for
    /// eight windows of 3 ms of kernel time, reading that CPU's idle time
    /// around each; the CPU someone spins on is not idle, so in at least
    /// one window (a checkpoint stops the thread now and then, and the CPU
    /// idles meanwhile) it must have idled at most half of the window.
    /// The kernel brings a CPU's idle time up to date only when its idle
    /// thread is switched out, so an idle CPU can look busy: the check
    /// catches a thread kept off its CPU, not every wrong placement.
    fn check_cpu(k: &mut CurrentThread, me: usize, warned: &mut bool) {
        let cpu = CPU[me].load(Relaxed) as u32;
        let set = CpuSet::one(cpu);
        let mut best: Option<(u64, u64)> = None;
        for _ in 0..8 {
            let Ok(idle0) = scheduler::idle_time(k, slots::SCHEDULER, set) else {
                if !*warned {
                    say!(k, "smp: {} asked for CPU {cpu}, which is not online here: no placement check", THREADS[me].1);
                    *warned = true;
                }
                return;
            };
            let mut t0 = now_us();
            loop {
                let now = now_us();
                // a restore on another ECU (a fresh boot) sets the kernel
                // clock back: a window begun before it starts again
                if now < t0 {
                    t0 = now;
                }
                if now >= t0 + 3_000 {
                    break;
                }
                core::hint::spin_loop();
            }
            let span = now_us() - t0;
            let Ok(idle1) = scheduler::idle_time(k, slots::SCHEDULER, set) else { return };
            let idle = idle1.saturating_sub(idle0);
            if best.is_none_or(|(i, s)| idle * s < i * span) {
                best = Some((idle, span));
            }
        }
        match best {
            Some((idle, span)) if idle * 2 <= span => {
                ON_CPU[me].fetch_add(1, Relaxed);
            }
            Some((idle, span)) => {
                OFF_CPU[me].fetch_add(1, Relaxed);
                problem(k, format_args!("{} is not on CPU {cpu}: it idled {idle} us of {span} us spun", THREADS[me].1));
            }
            None => {}
        }
    }

    /// A set-up step that failed: what, on which slot, and why.
    struct Failed(&'static str, CapIdx, Error);

    fn set_up(k: &mut CurrentThread, first_utcb: u64) -> Result<(), Failed> {
        let whole = Fpage::mem(0, 63, MemRights::empty());
        let kip = sigma0::map_kip(k, slots::PAGER, whole).map_err(|e| Failed("KIP", slots::PAGER.idx(), e))?;
        KIP_AT.store(kip, Relaxed);
        let info = scheduler::info(k, slots::SCHEDULER, CpuSet { gran_offset: 0, map: 0 })
            .map_err(|e| Failed("scheduler info", slots::SCHEDULER.idx(), e))?;
        // where there are fewer than four CPUs, the ones there are in turn
        let count = info.cpus.count_ones().max(1);
        let nth = |n: u32| (0..64u32).filter(|c| info.cpus & (1 << c) != 0).nth(n as usize).unwrap_or(0);
        for (i, &(_, _, want, _)) in THREADS.iter().enumerate() {
            let cpu = if want < 64 && info.cpus & (1 << want) != 0 { want } else { nth(want % count) };
            CPU[i].store(cpu as u64, Relaxed);
        }
        say!(
            k,
            "smp: CPUs {:#x}: server on {}, client on {}, irq waiter on {}, writer on {}",
            info.cpus,
            CPU[SERVER].load(Relaxed),
            CPU[CLIENT].load(Relaxed),
            CPU[WAITER].load(Relaxed),
            CPU[WRITER].load(Relaxed)
        );
        for (i, &(slot, _, _, _)) in THREADS.iter().enumerate() {
            factory::create_thread(k, slots::FACTORY, slot).map_err(|e| Failed("create thread", slot, e))?;
            let utcb = rtcr_child::utcb_of(first_utcb, i as u64 + 1).unwrap_or(0);
            let c = Control::new().pager(slots::PAGER.idx()).exc_handler(slots::PAGER.idx()).bind(utcb, slots::TASK);
            thread::control(k, Cap::new(slot), &c).map_err(|e| Failed("thread control", slot, e))?;
        }
        factory::create_gate(k, slots::FACTORY, GATE, Some((Cap::new(THREADS[SERVER].0), GATE_LABEL)))
            .map_err(|e| Failed("create gate", GATE, e))?;
        factory::create_irq(k, slots::FACTORY, IRQ).map_err(|e| Failed("create IRQ", IRQ, e))?;
        irq::bind_thread(k, irq_cap(), Cap::new(THREADS[WAITER].0), IRQ_LABEL)
            .map_err(|e| Failed("bind IRQ", IRQ, e))?;
        let entries: [extern "C" fn() -> !; 4] = [server, client, irq_waiter, writer];
        for (i, &(slot, _, _, prio)) in THREADS.iter().enumerate() {
            let p = SchedParam::on(CPU[i].load(Relaxed) as u32, prio);
            scheduler::run_thread(k, slots::SCHEDULER, Cap::new(slot), &p)
                .map_err(|e| Failed("run thread", slot, e))?;
            thread::ex_regs(
                k,
                Cap::new(slot),
                entries[i] as usize as u64,
                STACKS[i].initial_sp(),
                rtcr_child::start_flags(),
            )
            .map_err(|e| Failed("start thread", slot, e))?;
        }
        Ok(())
    }

    fn irq_cap() -> Cap<kind::Irq> {
        Cap::new(IRQ)
    }

    /// The first thread: sets up, then reports once a second.
    pub extern "C" fn smp_main() -> ! {
        rtcr_child::set_panic_hook(rtcr_child::log_panic);
        // SAFETY: this is the child's first thread, bound to its UTCB by the
        // kernel or rtcr, and this is the only CurrentThread made on it (the
        // panic handler makes another only once this one can never run again).
        let mut k = unsafe { CurrentThread::new() };
        let k = &mut k;
        let first_utcb = k.utcb_addr();
        say!(k, "smp: started");
        match set_up(k, first_utcb) {
            Ok(()) => say!(k, "smp: threads set up"),
            Err(Failed(what, slot, e)) => say!(k, "smp: {what} {:#x} failed: {e}", slot.0),
        }
        let mut round = 0u64;
        loop {
            let _ = ipc::sleep(k, Timeout::from_us(1_000_000));
            round += 1;
            let on = |i: usize| ON_CPU[i].load(Relaxed);
            say!(
                k,
                "smp: round {round} calls {} served {} irqs {}/{} (send timeouts {}) writes {} on-cpu {} {} {} {} \
                 problems {}",
                CALLS.load(Relaxed),
                SERVED.load(Relaxed),
                DELIVERED.load(Relaxed),
                TRIGGERS.load(Relaxed),
                TRIGGER_TIMEOUTS.load(Relaxed),
                WRITES.load(Relaxed),
                on(SERVER),
                on(CLIENT),
                on(WAITER),
                on(WRITER),
                PROBLEMS.load(Relaxed)
            );
        }
    }

    /// Makes the one CurrentThread of a started thread.
    fn this_thread() -> CurrentThread {
        // SAFETY: each started thread runs only its one function, which
        // calls this once; main bound the thread to its UTCB.
        unsafe { CurrentThread::new() }
    }

    /// How many rounds of a thread's work between two placement checks.
    const CHECK_EVERY: u64 = 500;

    extern "C" fn server() -> ! {
        let mut k = this_thread();
        let k = &mut k;
        let mut warned = false;
        check_cpu(k, SERVER, &mut warned);
        let mut got = ipc::wait(k, TimeoutPair::NEVER);
        loop {
            got = match got {
                Ok(r) if r.label & !3 == GATE_LABEL && r.tag.words() >= 1 => {
                    let n = k.utcb().mr[0];
                    let last = LAST_SEEN.load(Relaxed);
                    if n != last + 1 {
                        problem(k, format_args!("call {n} after call {last}: one lost or made twice"));
                    }
                    LAST_SEEN.store(n, Relaxed);
                    let served = SERVED.fetch_add(1, Relaxed) + 1;
                    k.utcb().mr[0] = n.wrapping_mul(7);
                    if served.is_multiple_of(CHECK_EVERY) {
                        // answered first: a call held longer than a cut
                        // waits for it is made again (README, known limits)
                        if let Err(e) = ipc::reply(k, ONE_WORD, 0, TimeoutPair::NEVER) {
                            problem(k, format_args!("reply to call {n}: {e}"));
                        }
                        check_cpu(k, SERVER, &mut warned);
                        ipc::wait(k, TimeoutPair::NEVER)
                    } else {
                        ipc::reply_and_wait(k, ONE_WORD, 0, TimeoutPair::NEVER)
                    }
                }
                Ok(r) => {
                    problem(k, format_args!("the server got label {:#x}", r.label));
                    ipc::wait(k, TimeoutPair::NEVER)
                }
                Err(_) => ipc::wait(k, TimeoutPair::NEVER),
            };
        }
    }

    extern "C" fn client() -> ! {
        let mut k = this_thread();
        let k = &mut k;
        let mut warned = false;
        check_cpu(k, CLIENT, &mut warned);
        loop {
            // the next call number: one more than the last call completed
            let n = CALLS.load(Relaxed) + 1;
            k.utcb().mr[0] = n;
            match ipc::call(k, GATE, ONE_WORD, TimeoutPair::NEVER) {
                Ok(r) if r.tag.words() >= 1 && k.utcb().mr[0] == n.wrapping_mul(7) => {
                    CALLS.store(n, Relaxed);
                }
                Ok(r) => {
                    let w = k.utcb().mr[0];
                    problem(k, format_args!("call {n} answered {w:#x} ({} words)", r.tag.words()));
                    CALLS.store(n, Relaxed);
                }
                Err(e) => problem(k, format_args!("call {n} failed: {e}")),
            }
            // counted before it is made, so that a cut between the two
            // stays consistent. A trigger is a send with a zero timeout: on
            // the kernel it cannot time out, but a proxy without a receiver
            // at that instant would make it (rtcr's IRQ fast path is there
            // so that it does not); one that did is counted apart and made
            // again
            let t = TRIGGERS.load(Relaxed) + 1;
            loop {
                TRIGGERS.store(t, Relaxed);
                match irq::trigger(k, irq_cap()) {
                    Ok(()) => break,
                    Err(e) if e.is_timeout() => {
                        TRIGGERS.store(t - 1, Relaxed);
                        TRIGGER_TIMEOUTS.fetch_add(1, Relaxed);
                        let _ = ipc::sleep(k, Timeout::from_us(1_000));
                    }
                    Err(e) => {
                        problem(k, format_args!("trigger {t} failed: {e}"));
                        break;
                    }
                }
            }
            // each trigger taken exactly once before the next. Not a
            // latency check: a waiter whose receive rtcr made again after a
            // cut (a held call) goes on only once rtcr is back to serve, and
            // rtcr's console dump (`dump_ms=`) keeps it away for seconds
            let from = now_us();
            while DELIVERED.load(Relaxed) < t {
                if now_us() > from + 10_000_000 {
                    problem(k, format_args!("trigger {t} not delivered in 10 s"));
                    break;
                }
                let _ = ipc::sleep(k, Timeout::from_us(1_000));
            }
            if n.is_multiple_of(CHECK_EVERY) {
                check_cpu(k, CLIENT, &mut warned);
            }
            let _ = ipc::sleep(k, Timeout::from_us(2_000));
        }
    }

    extern "C" fn irq_waiter() -> ! {
        let mut k = this_thread();
        let k = &mut k;
        let mut warned = false;
        check_cpu(k, WAITER, &mut warned);
        loop {
            match ipc::wait(k, TimeoutPair::NEVER) {
                Ok(r) if r.label & !3 == IRQ_LABEL => {
                    let d = DELIVERED.fetch_add(1, Relaxed) + 1;
                    let t = TRIGGERS.load(Relaxed);
                    if d > t {
                        problem(k, format_args!("IRQ delivery {d} for {t} triggers"));
                    }
                    if d.is_multiple_of(CHECK_EVERY) {
                        check_cpu(k, WAITER, &mut warned);
                    }
                }
                Ok(r) => problem(k, format_args!("the IRQ waiter got label {:#x}", r.label)),
                Err(_) => {}
            }
        }
    }

    extern "C" fn writer() -> ! {
        let mut k = this_thread();
        let k = &mut k;
        let mut warned = false;
        check_cpu(k, WRITER, &mut warned);
        loop {
            let n = MIRROR.load(Relaxed) / 3;
            let agree = PAGES.0.iter().all(|p| p[0].load(Relaxed) == n && p[511].load(Relaxed) == n);
            if !agree || MIRROR.load(Relaxed) != n * 3 {
                problem(k, format_args!("the writer's pages disagree with its mirror ({})", MIRROR.load(Relaxed)));
                rtcr_child::crash();
            }
            for p in &PAGES.0 {
                p[0].store(n + 1, Relaxed);
                p[511].store(n + 1, Relaxed);
            }
            MIRROR.store((n + 1) * 3, Relaxed);
            let w = WRITES.fetch_add(1, Relaxed) + 1;
            if w.is_multiple_of(64) {
                let _ = ipc::sleep(k, Timeout::from_us(1_000));
            }
            if w.is_multiple_of(CHECK_EVERY * 64) {
                check_cpu(k, WRITER, &mut warned);
            }
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "rtcr-smp is a child for rtcr on Fiasco.OC: build it with\n  \
         cargo build --release -p rtcr-child --bin rtcr-smp --target x86_64-unknown-none\n  \
         cargo build --release -p rtcr-child --bin rtcr-smp --target aarch64-unknown-none\n\
         and give it to rtcr as its child (or boot it as the root task with scripts/qemu-boot.sh --elf) \
         on a machine with several CPUs (scripts/qemu-boot.sh --smp 4)."
    );
    std::process::exit(2);
}

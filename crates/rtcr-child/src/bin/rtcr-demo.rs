//! rtcr-demo: the child rtcr supervises on the real kernel.
//!
//! The same child as the kernel-model one in `rtcr-sim` (`child.rs`),
//! written as ordinary threads. It uses only the child contract (slots 1–7,
//! see the library docs):
//!
//! * main creates three threads — T1, the entrypoint (slot 0x10); T2, a
//!   client (0x11); T3, an IRQ waiter (0x12) — three IPC gates bound to T1
//!   (0x20–0x22, labels 0x100/0x200/0x300) and three IRQs (0x30–0x32, labels
//!   0x1010 to T1, 0x1020 to T3, 0x1030 to T1; the client triggers them by
//!   software), on x86_64 a fourth (0x33, label 0x1040, to T1) bound to a
//!   hardware line through the ICU, runs the threads at priorities 12, 11,
//!   12 and starts them;
//! * then main counts: a counter and its mirror (3 × counter) in .bss, checked
//!   every step (a mismatch is a deliberate crash), one step per 2 ms; every
//!   64 steps it calls gate 0x20 (the entrypoint answers counter + 1000) and
//!   logs one line with what the entrypoint, the IRQ waiter and the client
//!   counted.
//!
//! All the state is in statics, i.e. child memory rtcr checkpoints. Booted
//! as the Fiasco root task instead, it talks to the kernel's objects directly.
//!
//! On a host OS this file builds a tiny program that says how to build the
//! real thing.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod demo {
    use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

    use l4_sys::arch::CurrentThread;
    use l4_sys::cap::{kind, Cap, CapIdx};
    use l4_sys::msgtag::{MsgTag, TagFlags};
    use l4_sys::scheduler::{self, SchedParam};
    use l4_sys::thread::{self, Control};
    use l4_sys::{factory, icu, ipc, irq, Error, Kernel, Timeout, TimeoutPair};
    use rtcr_child::{say, slots, DemoCounts, Received, Stack};

    l4_sys::root_task_entry!(crate::demo::demo_main);

    /// The entrypoint thread.
    const T1: CapIdx = CapIdx(0x10);
    /// The client thread.
    const T2: CapIdx = CapIdx(0x11);
    /// The IRQ waiter.
    const T3: CapIdx = CapIdx(0x12);
    /// The entrypoint's gates: slot and label.
    const GATES: [(CapIdx, u64); 3] = [(CapIdx(0x20), 0x100), (CapIdx(0x21), 0x200), (CapIdx(0x22), 0x300)];
    /// The IRQs: slot, label, and the thread they are bound to.
    const IRQS: [(CapIdx, u64, CapIdx); 3] =
        [(CapIdx(0x30), 0x1010, T1), (CapIdx(0x31), 0x1020, T3), (CapIdx(0x32), 0x1030, T1)];

    /// The IRQ bound to a hardware line through the ICU (label 0x1040, to T1).
    const HW_IRQ: CapIdx = CapIdx(0x33);
    /// The hardware line bound through the ICU (rtcr records it and binds it
    /// again after a restore): on x86 GSI 2, the PIT's line through the I/O
    /// APIC. It shows the ICU path on the kernel, but under QEMU it did not
    /// fire (presumably the kernel leaves the PIT stopped after calibrating
    /// its timer; a child has no I/O ports to start a device), so the `hw`
    /// count stays 0 there; on a board, bind a line a device really drives. QEMU's arm64
    /// `virt` has no free line that fires without programming a device, so
    /// the demo binds none there.
    #[cfg(target_arch = "x86_64")]
    const HW_LINE: Option<u64> = Some(2);
    #[cfg(target_arch = "aarch64")]
    const HW_LINE: Option<u64> = None;

    /// The three threads main starts: slot, function, priority, stack.
    const THREADS: [(CapIdx, extern "C" fn() -> !, u64); 3] =
        [(T1, entrypoint, 12), (T2, client, 11), (T3, irq_waiter, 12)];

    /// Bytes of stack per started thread.
    const STACK_BYTES: usize = 16 * 1024;
    static STACKS: [Stack<STACK_BYTES>; 3] = [const { Stack::new() }; 3];

    /// Main's counter and its mirror (3 × counter).
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static MIRROR: AtomicU64 = AtomicU64::new(0);
    /// What the entrypoint and the IRQ waiter received, and the client's calls.
    static COUNTS: DemoCounts = DemoCounts::new();

    /// A message of one untyped word, protocol label 0.
    const ONE_WORD: MsgTag = MsgTag::new(0, 1, 0, TagFlags::empty());

    fn irq_cap(slot: CapIdx) -> Cap<kind::Irq> {
        Cap::new(slot)
    }

    /// A set-up step that failed: what, on which slot, and why.
    struct Failed(&'static str, CapIdx, Error);

    /// Creates, binds and starts everything; main's UTCB is `first_utcb`.
    fn set_up(k: &mut CurrentThread, first_utcb: u64) -> Result<(), Failed> {
        for (i, &(slot, _, _)) in THREADS.iter().enumerate() {
            factory::create_thread(k, slots::FACTORY, slot).map_err(|e| Failed("create thread", slot, e))?;
            let utcb = first_utcb + rtcr_child::UTCB_SIZE * (i as u64 + 1);
            let c = Control::new().pager(slots::PAGER.idx()).exc_handler(slots::PAGER.idx()).bind(utcb, slots::TASK);
            thread::control(k, Cap::new(slot), &c).map_err(|e| Failed("thread control", slot, e))?;
        }
        for (gate, label) in GATES {
            factory::create_gate(k, slots::FACTORY, gate, Some((Cap::new(T1), label)))
                .map_err(|e| Failed("create gate", gate, e))?;
        }
        for (q, _, _) in IRQS {
            factory::create_irq(k, slots::FACTORY, q).map_err(|e| Failed("create IRQ", q, e))?;
        }
        for (q, label, to) in IRQS {
            irq::bind_thread(k, irq_cap(q), Cap::new(to), label).map_err(|e| Failed("bind IRQ", q, e))?;
        }
        if let Some(line) = HW_LINE {
            factory::create_irq(k, slots::FACTORY, HW_IRQ).map_err(|e| Failed("create IRQ", HW_IRQ, e))?;
            irq::bind_thread(k, irq_cap(HW_IRQ), Cap::new(T1), 0x1040).map_err(|e| Failed("bind IRQ", HW_IRQ, e))?;
            match icu::bind(k, slots::ICU, line, irq_cap(HW_IRQ)) {
                Ok(_) => {
                    let _ = irq::unmask(k, irq_cap(HW_IRQ));
                    say!(k, "demo: IRQ 0x1040 bound to hardware line {line}");
                }
                Err(e) => say!(k, "demo: no hardware line {line}: {e}"),
            }
        }
        for (i, &(slot, entry, prio)) in THREADS.iter().enumerate() {
            scheduler::run_thread(k, slots::SCHEDULER, Cap::new(slot), &SchedParam::prio(prio))
                .map_err(|e| Failed("run thread", slot, e))?;
            let sp = STACKS[i].initial_sp();
            thread::ex_regs(k, Cap::new(slot), entry as usize as u64, sp, rtcr_child::start_flags())
                .map_err(|e| Failed("start thread", slot, e))?;
        }
        Ok(())
    }

    /// The first thread: sets up, then counts forever.
    pub extern "C" fn demo_main() -> ! {
        rtcr_child::set_panic_hook(rtcr_child::log_panic);
        // SAFETY: this is the child's first thread, bound to its UTCB by the
        // kernel or rtcr, and this is the only CurrentThread made on it (the
        // panic handler makes another only once this one can never run again).
        let mut k = unsafe { CurrentThread::new() };
        let k = &mut k;
        let first_utcb = k.utcb_addr();
        say!(k, "demo: started, UTCB at {first_utcb:#x}");
        match set_up(k, first_utcb) {
            Ok(()) => say!(k, "demo: threads, gates and IRQs set up"),
            Err(Failed(what, slot, e)) => say!(k, "demo: {what} {:#x} failed: {e}", slot.0),
        }
        loop {
            let n = COUNTER.load(Relaxed);
            if MIRROR.load(Relaxed) != n.wrapping_mul(3) {
                rtcr_child::crash();
            }
            let n = n.wrapping_add(1);
            COUNTER.store(n, Relaxed);
            MIRROR.store(n.wrapping_mul(3), Relaxed);
            let _ = ipc::sleep(k, Timeout::from_us(2_000));
            if n.is_multiple_of(64) {
                call_entrypoint(k, n);
                say!(k, "demo: count {n} {COUNTS}");
            }
        }
    }

    /// Calls gate 0x20 with `n`; the entrypoint answers `n + 1000`.
    fn call_entrypoint(k: &mut CurrentThread, n: u64) {
        k.utcb().mr[0] = n;
        match ipc::call(k, GATES[0].0, ONE_WORD, TimeoutPair::NEVER) {
            Ok(r) => {
                let got = if r.tag.words() >= 1 { Some(k.utcb().mr[0]) } else { None };
                if got != Some(n.wrapping_add(1000)) {
                    say!(k, "demo: BAD REPLY {got:?} to {n}");
                }
            }
            Err(e) => say!(k, "demo: call to gate 0x20 failed: {e}"),
        }
    }

    /// T1: serves the three gates (reply word + 1000) and IRQs 0x1010, 0x1030.
    extern "C" fn entrypoint() -> ! {
        // SAFETY: T1 runs only this function, which makes the one
        // CurrentThread of this thread; main bound the thread to its UTCB.
        let mut k = unsafe { CurrentThread::new() };
        let k = &mut k;
        let mut got = ipc::wait(k, TimeoutPair::NEVER);
        loop {
            got = match got {
                Err(_) => ipc::wait(k, TimeoutPair::NEVER),
                Ok(r) => match Received::of(r.label) {
                    Received::Gate(i) => {
                        COUNTS.bump(i);
                        let w = if r.tag.words() >= 1 { k.utcb().mr[0] } else { 0 };
                        k.utcb().mr[0] = w.wrapping_add(1000);
                        ipc::reply_and_wait(k, ONE_WORD, 0, TimeoutPair::NEVER)
                    }
                    Received::Irq(i) => {
                        COUNTS.bump(i);
                        if i == 5 {
                            if let Err(e) = irq::unmask(k, irq_cap(IRQS[2].0)) {
                                say!(k, "demo: unmask of IRQ 0x1030 failed: {e}");
                            }
                        }
                        if i == 6 {
                            // a hardware line stays masked until unmasked
                            let _ = irq::unmask(k, irq_cap(HW_IRQ));
                        }
                        ipc::wait(k, TimeoutPair::NEVER)
                    }
                    Received::Unexpected(l) => {
                        say!(k, "demo: unexpected label {l:#x}");
                        ipc::wait(k, TimeoutPair::NEVER)
                    }
                },
            };
        }
    }

    /// T2: triggers the IRQs and calls gates 0x21 and 0x22, every 20 ms.
    extern "C" fn client() -> ! {
        // SAFETY: T2 runs only this function, which makes the one
        // CurrentThread of this thread; main bound the thread to its UTCB.
        let mut k = unsafe { CurrentThread::new() };
        let k = &mut k;
        let mut next = 0u64;
        loop {
            let _ = irq::trigger(k, irq_cap(IRQS[0].0));
            for (gate, _) in &GATES[1..] {
                k.utcb().mr[0] = next;
                next = next.wrapping_add(1);
                if ipc::call(k, *gate, ONE_WORD, TimeoutPair::NEVER).is_ok() {
                    COUNTS.bump_client();
                }
            }
            let _ = irq::trigger(k, irq_cap(IRQS[1].0));
            let _ = irq::trigger(k, irq_cap(IRQS[2].0));
            let _ = ipc::sleep(k, Timeout::from_us(20_000));
        }
    }

    /// T3: waits for IRQ 0x1020.
    extern "C" fn irq_waiter() -> ! {
        // SAFETY: T3 runs only this function, which makes the one
        // CurrentThread of this thread; main bound the thread to its UTCB.
        let mut k = unsafe { CurrentThread::new() };
        let k = &mut k;
        loop {
            if let Ok(r) = ipc::wait(k, TimeoutPair::NEVER) {
                match Received::of(r.label) {
                    Received::Irq(4) => COUNTS.bump(4),
                    Received::Gate(_) | Received::Irq(_) | Received::Unexpected(_) => {
                        say!(k, "demo: unexpected label {:#x}", r.label & !3)
                    }
                }
            }
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "rtcr-demo is a child for rtcr on Fiasco.OC: build it with\n  \
         cargo build --release -p rtcr-child --bin rtcr-demo --target x86_64-unknown-none\n  \
         cargo build --release -p rtcr-child --bin rtcr-demo --target aarch64-unknown-none\n\
         and give it to rtcr as its child (or boot it as the root task with scripts/qemu-boot.sh --elf)."
    );
    std::process::exit(2);
}

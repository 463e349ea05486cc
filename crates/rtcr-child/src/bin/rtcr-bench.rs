//! rtcr-bench: the child of the kernel benchmark (scripts/bench-kernel.sh).
//!
//! Booted as the root task and under rtcr alike (the child contract only),
//! it measures, with its own stamp counter (TSC / CNTVCT_EL0):
//!
//! * a gate round trip: main calls an IPC gate bound to thread S (which
//!   answers at once), [`SAMPLES`] times;
//! * an IRQ from trigger to delivery: main stamps, triggers a software IRQ
//!   bound to thread W (a higher priority than main), W stamps when the
//!   IRQ arrives, [`SAMPLES`] times;
//!
//! and prints median, p99 and max of each in ns (at the counter's nominal
//! rate: the KIP's CPU frequency on amd64, CNTFRQ_EL0 on arm64), of the
//! best of [`ROUNDS`] rounds (the one with the lowest median: under QEMU
//! on a shared host, a round can be slowed down by other work). Then it
//! dirties memory for the checkpoints rtcr takes: for each D of
//! [`PHASES`], for that many seconds (KIP clock), it writes one word into
//! each of D pages, sleeps [`PASS_SLEEP_US`], and again, so that every
//! checkpoint sees the same D pages written since the one before (rtcr's
//! interval must be longer than one pass); it prints a line when each
//! phase starts and `bench: done` at the end, then keeps writing one page.
//! The 4096 pages (16 MiB) come from the pager in 64 KiB blocks, and the
//! KIP too, each received into the whole address space as a root task
//! does (it lands where the pager says: sigma0 at its physical address,
//! rtcr in the child's sigma0 range). A smaller window of the child's own
//! would put it elsewhere, which rtcr learns by stopping the caller; a
//! reply rtcr gives while it takes a checkpoint is recorded at the pager's
//! address instead (`Supervisor::find_window`), and such a block, which a
//! child that asks for 256 of them in a row is bound to get, was missing
//! from the image: writing it after a restore crashed the child.
//!
//! On a host OS this file builds a tiny program that says how to build the
//! real thing.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod bench {
    use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

    use l4_sys::arch::CurrentThread;
    use l4_sys::cap::{kind, Cap, CapIdx};
    use l4_sys::fpage::{Fpage, MemRights};
    use l4_sys::kip::Kip;
    use l4_sys::msgtag::{MsgTag, TagFlags};
    use l4_sys::scheduler::{self, SchedParam};
    use l4_sys::thread::{self, Control};
    use l4_sys::{factory, ipc, irq, sigma0, Errno, Error, Kernel, Timeout, TimeoutPair};
    use rtcr_child::{say, slots, Stack};

    l4_sys::root_task_entry!(crate::bench::bench_main);

    /// Round trips and IRQs measured.
    const SAMPLES: usize = 1000;
    /// Each measurement starts after this many that are not kept.
    const WARM_UP: usize = 50;
    /// Rounds of each measurement, 100 ms apart.
    const ROUNDS: usize = 5;
    /// Pages written per pass, and for how many seconds.
    const PHASES: [(u64, u64); 4] = [(1, 25), (16, 25), (256, 25), (4096, 50)];
    /// The sleep between two passes (µs).
    const PASS_SLEEP_US: u64 = 2_000;
    /// Pages of RAM, in 64 KiB blocks.
    const RAM_PAGES: u64 = 4096;
    const BLOCKS: usize = (RAM_PAGES / 16) as usize;
    /// Where each block landed, and the KIP.
    static BLOCK_AT: [AtomicU64; BLOCKS] = [const { AtomicU64::new(0) }; BLOCKS];
    static KIP_AT: AtomicU64 = AtomicU64::new(0);

    /// The server thread and the IRQ waiter.
    const S: CapIdx = CapIdx(0x10);
    const W: CapIdx = CapIdx(0x11);
    /// The gate (bound to S) and the IRQ (bound to W).
    const GATE: CapIdx = CapIdx(0x20);
    const IRQ: CapIdx = CapIdx(0x30);
    const GATE_LABEL: u64 = 0x100;
    const IRQ_LABEL: u64 = 0x1010;
    /// Priorities: W above main, so an IRQ is taken as soon as it is
    /// delivered; S above main too.
    const MAIN_PRIO: u64 = 10;
    const S_PRIO: u64 = 12;
    const W_PRIO: u64 = 13;

    const STACK_BYTES: usize = 16 * 1024;
    static STACKS: [Stack<STACK_BYTES>; 2] = [const { Stack::new() }; 2];

    /// The stamp when main triggered, and W's answer: the delivery's
    /// stamp minus it, and how many W took.
    static TRIGGERED_AT: AtomicU64 = AtomicU64::new(0);
    static DELIVERY: AtomicU64 = AtomicU64::new(0);
    static DELIVERED: AtomicU64 = AtomicU64::new(0);

    const ONE_WORD: MsgTag = MsgTag::new(0, 1, 0, TagFlags::empty());

    /// A set-up step that failed: what, and why.
    struct Failed(&'static str, Error);

    /// The whole address space as a receive window.
    fn whole() -> Fpage {
        Fpage::mem(0, 63, MemRights::empty())
    }

    /// The KIP mapped where the pager puts it, and the stamp counter's
    /// nominal rate.
    fn kip(k: &mut CurrentThread) -> Result<u64, Failed> {
        let at = sigma0::map_kip(k, slots::PAGER, whole()).map_err(|e| Failed("KIP", e))?;
        KIP_AT.store(at, Relaxed);
        // SAFETY: the pager just mapped the KIP page (4 KiB, readable) at
        // `at`, received into the whole space; the kernel changes only its
        // clock word.
        let page = unsafe { core::slice::from_raw_parts(at as *const u8, 4096) };
        let kip = Kip::parse(page).map_err(|_| Failed("KIP parse", Error::Kernel(Errno::Inval)))?;
        #[cfg(target_arch = "aarch64")]
        let hz = {
            let _ = kip;
            l4_sys::arch::stamp_hz()
        };
        #[cfg(target_arch = "x86_64")]
        let hz = kip.frequency_cpu() * 1000;
        Ok(hz)
    }

    /// The kernel clock (µs), read from the KIP.
    fn now_us() -> u64 {
        // SAFETY: `kip` mapped the KIP at KIP_AT before any call of this,
        // executable as sigma0 (and rtcr in its place) maps it; its clock
        // routine is position independent.
        unsafe { l4_sys::kip::clock_us(KIP_AT.load(Relaxed) as *const u8) }
    }

    /// 16 MiB of RAM from the pager, 64 KiB at a time, where it puts them.
    fn get_ram(k: &mut CurrentThread) -> Result<(), Failed> {
        for b in &BLOCK_AT {
            let at = sigma0::map_any(k, slots::PAGER, 16, whole()).map_err(|e| Failed("RAM", e))?;
            b.store(at, Relaxed);
        }
        Ok(())
    }

    /// S and W, the gate and the IRQ, started.
    fn set_up(k: &mut CurrentThread, first_utcb: u64) -> Result<(), Failed> {
        let threads: [(CapIdx, extern "C" fn() -> !, u64); 2] = [(S, server, S_PRIO), (W, irq_waiter, W_PRIO)];
        for (i, &(slot, _, _)) in threads.iter().enumerate() {
            factory::create_thread(k, slots::FACTORY, slot).map_err(|e| Failed("create thread", e))?;
            let utcb = first_utcb + rtcr_child::UTCB_SIZE * (i as u64 + 1);
            let c = Control::new().pager(slots::PAGER.idx()).exc_handler(slots::PAGER.idx()).bind(utcb, slots::TASK);
            thread::control(k, Cap::new(slot), &c).map_err(|e| Failed("thread control", e))?;
        }
        factory::create_gate(k, slots::FACTORY, GATE, Some((Cap::new(S), GATE_LABEL)))
            .map_err(|e| Failed("create gate", e))?;
        factory::create_irq(k, slots::FACTORY, IRQ).map_err(|e| Failed("create IRQ", e))?;
        irq::bind_thread(k, irq_cap(), Cap::new(W), IRQ_LABEL).map_err(|e| Failed("bind IRQ", e))?;
        for (i, &(slot, entry, prio)) in threads.iter().enumerate() {
            scheduler::run_thread(k, slots::SCHEDULER, Cap::new(slot), &SchedParam::prio(prio))
                .map_err(|e| Failed("run thread", e))?;
            let sp = STACKS[i].initial_sp();
            thread::ex_regs(k, Cap::new(slot), entry as usize as u64, sp, rtcr_child::start_flags())
                .map_err(|e| Failed("start thread", e))?;
        }
        // main's own priority, below S and W
        scheduler::run_thread(k, slots::SCHEDULER, slots::THREAD, &SchedParam::prio(MAIN_PRIO))
            .map_err(|e| Failed("run main", e))?;
        Ok(())
    }

    fn irq_cap() -> Cap<kind::Irq> {
        Cap::new(IRQ)
    }

    /// Median, p99 and max of `s` (sorted here), in ns at `hz`.
    fn summary(s: &mut [u64], hz: u64) -> (u64, u64, u64) {
        s.sort_unstable();
        let ns = |t: u64| (u128::from(t) * 1_000_000_000 / u128::from(hz.max(1))) as u64;
        (ns(s[s.len() / 2]), ns(s[s.len() * 99 / 100]), ns(s[s.len() - 1]))
    }

    /// A measurement: `SAMPLES` of them (ticks) into `out`.
    type Measure = fn(&mut CurrentThread, &mut [u64; SAMPLES]) -> Result<(), Error>;

    /// The gate round trips (ticks) into `out`.
    fn gate_round_trips(k: &mut CurrentThread, out: &mut [u64; SAMPLES]) -> Result<(), Error> {
        for i in 0..WARM_UP + SAMPLES {
            k.utcb().mr[0] = i as u64;
            let t = l4_sys::arch::stamp_now();
            let r = ipc::call(k, GATE, ONE_WORD, TimeoutPair::NEVER)?;
            let dt = l4_sys::arch::stamp_now().wrapping_sub(t);
            if r.tag.words() < 1 || k.utcb().mr[0] != i as u64 + 1 {
                return Err(Error::Kernel(Errno::Inval));
            }
            if i >= WARM_UP {
                out[i - WARM_UP] = dt;
            }
        }
        Ok(())
    }

    /// The IRQ deliveries (ticks) into `out`.
    fn irq_deliveries(k: &mut CurrentThread, out: &mut [u64; SAMPLES]) -> Result<(), Error> {
        for i in 0..WARM_UP + SAMPLES {
            let before = DELIVERED.load(Relaxed);
            TRIGGERED_AT.store(l4_sys::arch::stamp_now(), Relaxed);
            irq::trigger(k, irq_cap())?;
            // W runs above main: it took the IRQ before main goes on, unless
            // something else delayed it
            let mut waited = 0;
            while DELIVERED.load(Relaxed) == before {
                waited += 1;
                if waited > 1000 {
                    return Err(Error::Kernel(Errno::Inval));
                }
                let _ = ipc::sleep(k, Timeout::from_us(1_000));
            }
            if i >= WARM_UP {
                out[i - WARM_UP] = DELIVERY.load(Relaxed);
            }
        }
        Ok(())
    }

    /// The first thread: sets up, measures, then dirties memory.
    pub extern "C" fn bench_main() -> ! {
        rtcr_child::set_panic_hook(rtcr_child::log_panic);
        // SAFETY: this is the child's first thread, bound to its UTCB by the
        // kernel or rtcr, and this is the only CurrentThread made on it (the
        // panic handler makes another only once this one can never run again).
        let mut k = unsafe { CurrentThread::new() };
        let k = &mut k;
        let first_utcb = k.utcb_addr();
        say!(k, "bench: started");
        let hz = match kip(k).and_then(|hz| get_ram(k).map(|_| hz)).and_then(|hz| set_up(k, first_utcb).map(|_| hz)) {
            Ok(hz) => hz,
            Err(Failed(what, e)) => {
                say!(k, "bench: ERROR {what}: {e}");
                loop {
                    let _ = ipc::sleep(k, Timeout::NEVER);
                }
            }
        };
        say!(k, "bench: stamp counter at {hz} Hz (nominal)");
        // the samples of one measurement (ticks): 8 KiB of main's 64 KiB stack
        let samples = &mut [0u64; SAMPLES];
        let mut best = [(u64::MAX, 0, 0); 2];
        // each round's medians: gate, IRQ
        let mut medians = [[0u64; 2]; ROUNDS];
        for round in medians.iter_mut() {
            for (which, run) in [gate_round_trips as Measure, irq_deliveries].into_iter().enumerate() {
                match run(k, samples) {
                    Ok(()) => {
                        let s = summary(samples, hz);
                        round[which] = s.0;
                        if s.0 < best[which].0 {
                            best[which] = s;
                        }
                    }
                    Err(e) => say!(k, "bench: ERROR {}: {e}", ["gate round trip", "irq trigger to delivery"][which]),
                }
            }
            let _ = ipc::sleep(k, Timeout::from_us(100_000));
        }
        for (which, what) in ["gate round trip", "irq trigger to delivery"].into_iter().enumerate() {
            let (med, p99, max) = best[which];
            let m = medians.map(|r| r[which]);
            say!(
                k,
                "bench: {what}: n {SAMPLES} median_ns {med} p99_ns {p99} max_ns {max} (the best of {ROUNDS} rounds; \
                 their medians {} {} {} {} {})",
                m[0],
                m[1],
                m[2],
                m[3],
                m[4]
            );
        }
        let mut pass = 0u64;
        for (d, secs) in PHASES {
            say!(k, "bench: phase: {d} pages per pass for {secs} s");
            let end = now_us() + secs * 1_000_000;
            while now_us() < end {
                write_pages(d, pass);
                pass += 1;
                let _ = ipc::sleep(k, Timeout::from_us(PASS_SLEEP_US));
            }
        }
        say!(k, "bench: done after {pass} passes");
        loop {
            write_pages(1, pass);
            pass += 1;
            let _ = ipc::sleep(k, Timeout::from_us(PASS_SLEEP_US));
        }
    }

    /// One word of `pass` into each of the first `d` pages of RAM (a word
    /// that moves, so every page changes).
    fn write_pages(d: u64, pass: u64) {
        for i in 0..d.min(RAM_PAGES) {
            let block = BLOCK_AT[(i / 16) as usize].load(Relaxed);
            let at = block + 4096 * (i % 16) + 8 * (pass % 512);
            // SAFETY: get_ram had the pager map each 64 KiB block read-write
            // at BLOCK_AT; only main touches them, and no reference to
            // them exists.
            unsafe { core::ptr::write_volatile(at as *mut u64, pass.wrapping_add(1)) };
        }
    }

    /// S: answers every call with its word + 1.
    extern "C" fn server() -> ! {
        // SAFETY: S runs only this function, which makes the one
        // CurrentThread of this thread; main bound the thread to its UTCB.
        let mut k = unsafe { CurrentThread::new() };
        let k = &mut k;
        let mut got = ipc::wait(k, TimeoutPair::NEVER);
        loop {
            got = match got {
                Ok(r) if r.label & !3 == GATE_LABEL => {
                    let w = k.utcb().mr[0];
                    k.utcb().mr[0] = w.wrapping_add(1);
                    ipc::reply_and_wait(k, ONE_WORD, 0, TimeoutPair::NEVER)
                }
                _ => ipc::wait(k, TimeoutPair::NEVER),
            };
        }
    }

    /// W: stamps each IRQ's delivery.
    extern "C" fn irq_waiter() -> ! {
        // SAFETY: W runs only this function, which makes the one
        // CurrentThread of this thread; main bound the thread to its UTCB.
        let mut k = unsafe { CurrentThread::new() };
        let k = &mut k;
        loop {
            if let Ok(r) = ipc::wait(k, TimeoutPair::NEVER) {
                let now = l4_sys::arch::stamp_now();
                if r.label & !3 == IRQ_LABEL {
                    DELIVERY.store(now.wrapping_sub(TRIGGERED_AT.load(Relaxed)), Relaxed);
                    DELIVERED.fetch_add(1, Relaxed);
                }
            }
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "rtcr-bench is the child of the kernel benchmark (scripts/bench-kernel.sh): build it with\n  \
         cargo build --release -p rtcr-child --bin rtcr-bench --target x86_64-unknown-none\n  \
         cargo build --release -p rtcr-child --bin rtcr-bench --target aarch64-unknown-none"
    );
    std::process::exit(2);
}

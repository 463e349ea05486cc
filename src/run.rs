//! rtcr as the root task of one child: the child's layout, the checkpoint
//! store, and the server loop that runs rtcr-core's driver on the kernel,
//! logging what it does.
//!
//! The child's virtual layout is `rtcr_boot::layout` (part of the child
//! contract, README "Writing a child"). rtcr's own side: the frames it
//! gives the child from [`FRAMES_VA`], the store at [`STORE_VA`]; neither
//! is ever mapped into the child.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use l4_sys::cap::{base, kind, Cap};
use l4_sys::log::LogWriter;
use l4_sys::{ipc, Timeout};
use rtcr_boot::config::Config;
use rtcr_boot::elf::Image;
use rtcr_core::driver::{Driver, Event, Policy};
use rtcr_core::{ChildSpec, Env};
use rtcr_image::store::RegionError;
use rtcr_image::{Region, Store};

use crate::env::KernelEnv;
use crate::logger::log;

use rtcr_boot::layout::{CHILD_RANGE, SHARED, SIGMA0_RANGE, STACK_SIZE, STACK_TOP, TRAMPOLINE, UTCB_AREA};

/// rtcr's own addresses of the frames it gives the child (a 32 GiB window).
pub const FRAMES_VA: u64 = 0x40_0000_0000;
const FRAMES_LEN: u64 = 0x8_0000_0000;
/// rtcr's own address of the checkpoint store.
pub const STORE_VA: u64 = 0x38_0000_0000;
/// rtcr's own address of the benchmark's scratch RAM (`bench`; as large as
/// the store, so it ends at the latest at [`FRAMES_VA`]).
pub const BENCH_VA: u64 = 0x3C_0000_0000;
/// rtcr's first capability slot for the objects it holds for the child.
const RTCR_SLOTS: u64 = 0x100;
/// How often the loop looks at the clock for the test hooks (µs).
const SLICE_US: u64 = 50_000;

const LOG: Cap<kind::Log> = Cap::new(base::LOG);

macro_rules! say {
    ($k:expr, $($arg:tt)*) => {{
        let _ = writeln!(LogWriter::new($k, LOG), $($arg)*);
    }};
}

#[cfg(target_arch = "x86_64")]
const MACHINE: u16 = rtcr_boot::elf::EM_X86_64;
#[cfg(target_arch = "aarch64")]
const MACHINE: u16 = rtcr_boot::elf::EM_AARCH64;

/// Where an L4Re program expects the KIP when its ELF does not say.
#[cfg(target_arch = "x86_64")]
const L4RE_KIP_DEFAULT: u64 = 0x6fff_f000;
#[cfg(target_arch = "aarch64")]
const L4RE_KIP_DEFAULT: u64 = 0xb000_0000;
/// Where an L4Re child's region map places regions.
const L4RE_RM_LIMIT: (u64, u64) = (0x1_0000, 0xc000_0000);

/// The child's layout as an L4Re program (its ELF has PT_L4_AUX): the
/// stack where its descriptors say, with the start-up data moe would leave
/// on it, the environment's services, the boot modules under `rom/`.
fn l4re_spec(spec: &mut ChildSpec, image: &Image<'_>, aux: &[u8], roms: Vec<rtcr_core::Rom>) -> Result<(), String> {
    use rtcr_boot::l4re::{start_stack, Aux, EnvCaps, StartArgs};
    use rtcr_core::state::l4re_slots;
    let aux = Aux::parse(aux).map_err(|e| alloc::format!("{e}"))?;
    let kip = aux.kip_addr.unwrap_or(L4RE_KIP_DEFAULT);
    let (ua, uo) = spec.utcb_area;
    let caps = EnvCaps {
        parent: l4re_slots::PARENT,
        rm: l4re_slots::RM,
        mem_alloc: l4re_slots::MEM_ALLOC,
        log: base::LOG.0,
        main_thread: base::THREAD.0,
        factory: base::FACTORY.0,
        scheduler: base::SCHEDULER.0,
        dbg_events: None,
        first_free_cap: l4re_slots::FIRST_FREE,
        // an l4_fpage_t, as moe's utcb_area field is
        utcb_area: l4_sys::Fpage::mem(ua, u32::from(uo), l4_sys::MemRights::empty()).0,
        first_free_utcb: ua + rtcr_boot::layout::UTCB_STRIDE,
        // the names moe gives that rtcr has: rom/, the log, the ICU
        named: alloc::vec![
            (String::from("rom"), l4re_slots::ROM),
            (String::from("log"), base::LOG.0),
            (String::from("icu"), base::ICU.0),
        ],
    };
    let argv0 = alloc::format!("rom/{}", spec.name);
    let args = StartArgs { argv: &[argv0.as_str()], envp: &[], kip, kip_ds: None, phdrs: image.phdrs_in_memory() };
    let start = start_stack(aux.stack_top(), aux.stack_size, &args, &caps).map_err(|e| alloc::format!("{e}"))?;
    // the start-up data as pre-loaded pages at the top of the stack
    let first = start.sp & !0xfff;
    for va in (first..aux.stack_top()).step_by(4096) {
        let mut page = alloc::vec![0u8; 4096];
        for (i, b) in page.iter_mut().enumerate() {
            if let Some(x) = (va + i as u64).checked_sub(start.sp).and_then(|o| start.bytes.get(o as usize)) {
                *b = *x;
            }
        }
        spec.load.push((va, page, 6));
    }
    spec.stack_top = start.sp;
    spec.regions = alloc::vec![rtcr_core::Region { start: aux.stack_addr, len: aux.stack_size, rights: 6 }];
    spec.l4re = Some(rtcr_core::L4reSpec { kip, rm_limit: L4RE_RM_LIMIT, roms, on_exit: rtcr_core::OnExit::Stop });
    Ok(())
}

/// The child's layout from its ELF image and the configuration.
pub fn child_spec(name: &str, image: &Image<'_>, config: &Config<'_>) -> ChildSpec {
    let max_threads = config.max_threads.min(rtcr_boot::layout::MAX_THREADS);
    // UTCB_STRIDE bytes per thread, at least one page
    let utcb_bytes = max_threads as u64 * rtcr_boot::layout::UTCB_STRIDE;
    let utcb_order = utcb_bytes.next_power_of_two().trailing_zeros().max(12) as u8;
    ChildSpec {
        name: String::from(name),
        entry: image.entry,
        stack_top: STACK_TOP,
        prio: 10,
        utcb_area: (UTCB_AREA, utcb_order),
        load: image.pages(),
        regions: alloc::vec![rtcr_core::Region { start: STACK_TOP - STACK_SIZE, len: STACK_SIZE, rights: 6 }],
        trampoline: TRAMPOLINE,
        trampoline_code: crate::trampoline::bytes().to_vec(),
        shared: SHARED,
        rtcr_mem: FRAMES_VA,
        rtcr_slots: RTCR_SLOTS,
        child_slots: rtcr_core::supervisor::PRIV_BASE,
        max_threads,
        max_objects: config.max_objects,
        max_pages: config.max_pages,
        server_thread: base::THREAD.0,
        fast_path: None,
        settle_us: config.settle_ms * 1000,
        sigma0_range: SIGMA0_RANGE,
        l4re: None,
    }
}

/// The checkpoint store: RAM from sigma0, mapped into rtcr only.
struct StoreRam {
    len: usize,
}

impl StoreRam {
    /// Maps `kib` KiB of RAM at [`STORE_VA`] and zeroes it.
    fn map(env: &mut KernelEnv, kib: u64) -> Result<Self, l4_sys::Error> {
        if let (_, Some(e)) = crate::heap::map_any_ram(env, STORE_VA, kib / 4 * 4096) {
            return Err(e);
        }
        let len = (kib / 4 * 4096) as usize;
        // SAFETY: [STORE_VA, STORE_VA + len) was just mapped read-write from
        // sigma0 (map_any_ram covered all of it), and nothing else refers to it.
        unsafe { core::ptr::write_bytes(STORE_VA as *mut u8, 0, len) };
        Ok(StoreRam { len })
    }

    fn check(&self, offset: usize, len: usize) -> Result<(), RegionError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(RegionError::OutOfBounds { offset, len, region_len: self.len }),
        }
    }
}

impl Region for StoreRam {
    fn len(&self) -> usize {
        self.len
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RegionError> {
        self.check(offset, buf.len())?;
        // SAFETY: the range was checked to lie in the store mapped by `map`,
        // which stays mapped and is only reached through this StoreRam.
        unsafe {
            core::ptr::copy_nonoverlapping((STORE_VA as usize + offset) as *const u8, buf.as_mut_ptr(), buf.len())
        };
        Ok(())
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), RegionError> {
        self.check(offset, data.len())?;
        // SAFETY: as in `read`; `&mut self` makes this the only access.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), (STORE_VA as usize + offset) as *mut u8, data.len()) };
        Ok(())
    }

    // a restore checks and decodes the image where it lies in the store
    // instead of copying it into the heap first (a memcpy of the image, and
    // the heap for it, saved on every recovery)
    fn as_slice(&self) -> Option<&[u8]> {
        // SAFETY: [STORE_VA, STORE_VA + len) is mapped read-write by `map`
        // and stays mapped for rtcr's life; it is only written through
        // `write`, which takes `&mut self` and so cannot run while the
        // slice, borrowed from `&self`, lives.
        Some(unsafe { core::slice::from_raw_parts(STORE_VA as *const u8, self.len) })
    }
}

/// RAM for the memcpy baselines of `bench` (scripts/bench-kernel.sh): mapped
/// into rtcr only, never into the child; rtcr times a copy from its first
/// half to its second, in the same boot as what it compares with.
struct Scratch {
    len: usize,
}

impl Scratch {
    /// Maps `kib` KiB of RAM at [`BENCH_VA`] and touches all of it.
    fn map(env: &mut KernelEnv, kib: u64) -> Result<Self, l4_sys::Error> {
        let len = (kib / 4 * 4096) as usize;
        if let (_, Some(e)) = crate::heap::map_any_ram(env, BENCH_VA, len as u64) {
            return Err(e);
        }
        // SAFETY: [BENCH_VA, BENCH_VA + len) was just mapped read-write from
        // sigma0 (map_any_ram covered all of it), and nothing else refers to it.
        unsafe { core::ptr::write_bytes(BENCH_VA as *mut u8, 0x5a, len) };
        Ok(Scratch { len })
    }

    /// A memcpy of `bytes` (at most half the scratch), in ns on the stamp
    /// counter: the fastest of three after one that warms up, so both
    /// halves are in the TLB and caches as far as they fit (as the pages
    /// rtcr copies are) and a timer tick or a preemption of QEMU on the
    /// host counts only if it hit all three.
    fn memcpy_ns(&self, env: &mut KernelEnv, bytes: usize) -> u64 {
        let n = bytes.min(self.len / 2);
        let mut best = u64::MAX;
        for i in 0..4 {
            let t = env.stamp_now();
            // SAFETY: both ranges lie in the scratch `map` mapped read-write
            // ([BENCH_VA, BENCH_VA + len), n <= len / 2), do not overlap, and
            // are reached only through this Scratch.
            unsafe {
                core::ptr::copy_nonoverlapping(BENCH_VA as *const u8, (BENCH_VA as usize + self.len / 2) as *mut u8, n)
            };
            let ticks = env.stamp_now().wrapping_sub(t);
            if i > 0 {
                best = best.min(ticks);
            }
        }
        env.ticks_ns(best)
    }

    /// The image checksums over `bytes` of the scratch (at most half), in ns
    /// as [`Scratch::memcpy_ns`] times them: CRC-64/XZ (format versions 1
    /// to 3), XXH3-64 (the other candidate) and XXH64 (version 5).
    fn checksums_ns(&self, env: &mut KernelEnv, bytes: usize) -> [u64; 3] {
        let n = bytes.min(self.len / 2);
        // SAFETY: [BENCH_VA, BENCH_VA + n) lies in the scratch `map` mapped
        // read-write and initialised; nothing writes it while this shared
        // slice lives (the scratch is reached only through this Scratch).
        let data = unsafe { core::slice::from_raw_parts(BENCH_VA as *const u8, n) };
        let hz = u128::from(env.stamp_hz().max(1));
        let mut time = |f: &dyn Fn(&[u8]) -> u64| {
            let mut best = u64::MAX;
            for i in 0..3 {
                let t = env.stamp_now();
                core::hint::black_box(f(core::hint::black_box(data)));
                let ticks = env.stamp_now().wrapping_sub(t);
                if i > 0 {
                    best = best.min(ticks);
                }
            }
            (u128::from(best) * 1_000_000_000 / hz) as u64
        };
        [
            time(&|d| rtcr_image::checksum::Algo::Crc64Xz.of(d)),
            time(&|d| xxhash_rust::xxh3::xxh3_64(d)),
            time(&|d| xxhash_rust::xxh64::xxh64(d, 0)),
        ]
    }
}

/// The length of the image with sequence `seq` in the store (from its
/// header), if a slot holds it.
fn image_len(store: &Store<StoreRam>, seq: u64) -> Option<usize> {
    [rtcr_image::Slot::A, rtcr_image::Slot::B].into_iter().find_map(|slot| {
        let mut head = [0u8; rtcr_image::HEADER_LEN];
        store.region().read(store.slot_offset(slot), &mut head).ok()?;
        let h = rtcr_image::read_header(&head).ok()?;
        (h.sequence == seq).then_some(h.image_len() as usize)
    })
}

/// Stops rtcr with a last line (the child, if any, stays as it is).
fn stop(env: &mut KernelEnv, why: core::fmt::Arguments<'_>) -> ! {
    say!(env, "rtcr: {why}");
    say!(env, "rtcr: stopped");
    loop {
        let _ = ipc::sleep(env, Timeout::NEVER);
    }
}

/// Runs `child` (its module name and bytes) under rtcr-core's driver, for
/// ever. `restore` is an image from another boot to start from.
pub fn run(
    mut env: KernelEnv,
    config: &Config<'_>,
    child: (&str, &[u8]),
    restore: Option<(&str, &[u8])>,
    roms: Vec<rtcr_core::Rom>,
    fast_path: Option<(u64, l4_sys::cap::CapIdx)>,
) -> ! {
    let (name, bytes) = child;
    let image = match Image::parse(bytes, MACHINE, CHILD_RANGE) {
        Ok(i) => i,
        Err(e) => stop(
            &mut env,
            format_args!(
                "child module '{name}' is not a static ELF rtcr can load into {:#x}-{:#x}: {e}",
                CHILD_RANGE.0, CHILD_RANGE.1
            ),
        ),
    };
    let mut spec = child_spec(name, &image, config);
    spec.fast_path = fast_path;
    if let Some(aux) = image.l4_aux() {
        if let Err(e) = l4re_spec(&mut spec, &image, aux, roms) {
            stop(&mut env, format_args!("child module '{name}' is an L4Re program rtcr cannot start: {e}"));
        }
        log!(
            &mut env,
            "rtcr: child '{=str}' is an L4Re program: it gets the L4Re environment (stack top {=u64:#x}, KIP at \
             {=u64:#x})",
            name,
            spec.stack_top,
            spec.l4re.as_ref().map(|l| l.kip).unwrap_or(0)
        );
    }
    log!(
        &mut env,
        "rtcr: child '{=str}': entry {=u64:#x}, {=usize} pages from {=usize} segments",
        name,
        spec.entry,
        spec.load.len(),
        image.segments().count()
    );
    let ram = match StoreRam::map(&mut env, config.store_kib) {
        Ok(r) => r,
        Err(e) => stop(&mut env, format_args!("no RAM for the {} KiB checkpoint store: {e}", config.store_kib)),
    };
    log!(&mut env, "rtcr: checkpoint store: {=u64} KiB (slots A and B), RAM mapped into rtcr only", config.store_kib);
    let scratch = config.bench.then(|| match Scratch::map(&mut env, config.store_kib) {
        Ok(s) => {
            log!(&mut env, "rtcr: bench: {=u64} KiB of scratch RAM for the memcpy baselines", config.store_kib);
            // what checking an image costs here, per checksum, against a
            // memcpy of the same bytes (4 MiB: a fifth of the largest image)
            let n = 4 << 20;
            let [crc, xxh3, xxh64] = s.checksums_ns(&mut env, n);
            let memcpy = s.memcpy_ns(&mut env, n);
            log!(
                &mut env,
                "rtcr: bench: checksums over {=usize} bytes: memcpy_ns {=u64} crc64_ns {=u64} xxh3_ns {=u64} xxh64_ns {=u64}",
                n.min(s.len / 2),
                memcpy,
                crc,
                xxh3,
                xxh64
            );
            s
        }
        Err(e) => stop(&mut env, format_args!("no RAM for the {} KiB benchmark scratch: {e}", config.store_kib)),
    });
    let scratch = scratch.as_ref();
    if config.bench {
        // before the child exists: nothing else is mapped or unmapped meanwhile
        crate::protect_bench::run(&mut env);
    }
    let mut store = Store::new(ram);
    if let Some((rname, rbytes)) = restore {
        match store.write(rbytes) {
            Ok(_) => {
                log!(&mut env, "rtcr: image module '{=str}' ({=usize} bytes) put into the store", rname, rbytes.len())
            }
            // the store takes only an image that verifies (and fits): a
            // damaged one is refused here with the reason, before any of it
            // is used, and the child starts afresh
            Err(e) => log!(
                &mut env,
                "rtcr: image module '{=str}' refused, the child starts afresh: {}",
                rname,
                defmt::Display2Format(&e)
            ),
        }
    }
    let policy = Policy {
        interval_us: config.interval_ms * 1000,
        max_image_failures: config.max_image_failures,
        in_place: !config.full_restore,
        ..Policy::default()
    };
    let t_start = env.clock_us();
    let mut d = match Driver::start(&mut env, spec, store, policy) {
        Ok(d) => d,
        Err(e) => stop(&mut env, format_args!("could not start the child: {e}")),
    };
    let since_rtcr_us = env.clock_us().saturating_sub(crate::boot::started_us());
    let how = if d.sup.seq > 0 { "restored from the image" } else { "started" };
    log!(
        &mut env,
        "rtcr: child '{=str}' {=str} ({=usize} pages) {=u64} us after rtcr's start, checkpoint every {=u64} ms",
        name,
        how,
        d.sup.page_count(),
        since_rtcr_us,
        config.interval_ms
    );
    report(&mut env, &mut d, config.jdb, scratch);
    if d.sup.seq > 0 {
        let cpus: Vec<i64> = d.sup.thread_cpus().iter().map(|c| c.map_or(-1, i64::from)).collect();
        log!(&mut env, "rtcr: restored threads on CPUs {=[?]} (-1: none)", cpus.as_slice());
        verify(&mut env, &mut d);
    }
    let (mut crash_due, mut dump_due) = (config.crash_ms, config.dump_ms);
    let mut cancels_said = 0;
    loop {
        let now = env.clock_us();
        let elapsed_ms = now.saturating_sub(t_start) / 1000;
        if let Some(ms) = crash_due.filter(|ms| elapsed_ms >= *ms) {
            // the next one a whole period from now: after rtcr was held up
            // (a console dump takes seconds) the missed ones do not come in
            // a burst, which would crash the child again before any
            // checkpoint of the restored child (a crash loop of the hook's
            // making)
            crash_due = config.crash_every_ms.map(|every| (ms + every).max(elapsed_ms + every));
            if config.jdb {
                jdb(&mut env, "rtcr: jdb-before-checkpoint: look at the child's object space, then g");
                // the checkpoint the restore will use, taken now; the next
                // periodic one an interval later (not at once: its time
                // passed while the kernel sat in JDB), so that it cannot
                // catch the child between the wild jump and the crash
                d.checkpoint_now(&mut env);
                report(&mut env, &mut d, config.jdb, scratch);
            }
            log!(&mut env, "rtcr: test hook crash_ms: sending the child's first thread to address 0");
            if let Err(e) = d.sup.inject_wild_jump(&mut env, 0) {
                log!(&mut env, "rtcr: test hook crash_ms failed: {}", defmt::Display2Format(&e));
            }
        }
        if dump_due.is_some_and(|ms| elapsed_ms >= ms) {
            dump_due = None;
            dump_image(&mut env, &d);
        }
        if let Err(e) = d.run_until(&mut env, now + SLICE_US) {
            report(&mut env, &mut d, config.jdb, scratch);
            stop(&mut env, format_args!("supervising '{name}' failed: {e}"));
        }
        report(&mut env, &mut d, config.jdb, scratch);
        if d.sup.visible_cancels != cancels_said {
            cancels_said = d.sup.visible_cancels;
            log!(
                &mut env,
                "rtcr: {=u64} kernel calls of the child could not be left alone by a checkpoint (a call waiting for \
                 its reply, or a send, blocked longer than the settle time): the child saw them cancelled",
                cancels_said
            );
        }
        env.calibrate_stamp();
    }
}

/// Logs (and forgets) what the driver did since the last call; with
/// `bench`'s scratch, also what the kernel benchmark reads.
fn report(env: &mut KernelEnv, d: &mut Driver<StoreRam>, jdb_after_restore: bool, bench: Option<&Scratch>) {
    for e in core::mem::take(&mut d.events) {
        match e {
            Event::Checkpoint { stats, slot, bytes } => {
                log!(
                    env,
                    "rtcr: checkpoint {=u64}: {=usize} pages copied, pause {=u64} us, {=usize} threads, image {=usize} \
                     bytes in slot {=char}",
                    stats.seq,
                    stats.pages_copied,
                    stats.pause_us,
                    stats.threads,
                    bytes,
                    if slot == 0 { 'A' } else { 'B' }
                );
                if let Some(scratch) = bench {
                    let memcpy_ns = scratch.memcpy_ns(env, stats.pages_copied * 4096);
                    log!(
                        env,
                        "rtcr: bench: checkpoint {=u64}: dirty {=usize} pause_us {=u64} protect_us {=u64} copy_us {=u64} \
                         fpages {=usize} memcpy_ns {=u64} image {=usize} child_pages {=usize} heap_used {=usize} \
                         heap_peak {=usize}",
                        stats.seq,
                        stats.pages_copied,
                        stats.pause_us,
                        stats.protect_us,
                        stats.copy_us,
                        stats.fpages,
                        memcpy_ns,
                        bytes,
                        d.sup.page_count(),
                        crate::heap::used(),
                        crate::heap::take_peak()
                    );
                }
            }
            Event::Crash { thread, code } => {
                log!(env, "rtcr: child thread {=u32} crashed (trap/exception class {=u64:#x})", thread, code);
            }
            Event::Restored { seq, backoff_us, took_us } => {
                log!(
                    env,
                    "rtcr: restored from checkpoint {=u64} in {=u64} us (after a backoff of {=u64} us)",
                    seq,
                    took_us,
                    backoff_us
                );
                if d.sup.restore_in_place {
                    log!(
                        env,
                        "rtcr: restored in place: the crashed child's task kept, {=u64} pages left as they were",
                        d.sup.restore_kept_pages
                    );
                }
                let cpus: Vec<i64> = d.sup.thread_cpus().iter().map(|c| c.map_or(-1, i64::from)).collect();
                log!(env, "rtcr: restored threads on CPUs {=[?]} (-1: none)", cpus.as_slice());
                for (what, us) in d.sup.restore_phases.clone() {
                    log!(env, "rtcr: restore phase: {=str} {=u64} us", what, us);
                }
                if let Some(scratch) = bench {
                    let bytes = image_len(&d.store, seq).unwrap_or(0);
                    let phases_us: u64 = d.sup.restore_phases.iter().map(|p| p.1).sum();
                    let memcpy_ns = scratch.memcpy_ns(env, bytes);
                    log!(
                        env,
                        "rtcr: bench: restore {=u64}: image {=usize} phases_us {=u64} memcpy_ns {=u64} child_pages \
                         {=usize} map_us {=u64} unmap_us {=u64}",
                        seq,
                        bytes,
                        phases_us,
                        memcpy_ns,
                        d.sup.page_count(),
                        d.sup.restore_map_us,
                        d.sup.restore_unmap_us
                    );
                }
                verify(env, d);
                if jdb_after_restore {
                    jdb(env, "rtcr: jdb-after-restore: look at the child's object space, then g");
                }
            }
            Event::CheckpointFailed(why) => {
                log!(env, "rtcr: checkpoint failed (the previous image stays): {=str}", why.as_str())
            }
            Event::ImageRefused(why) => log!(env, "rtcr: image refused: {=str}", why.as_str()),
            Event::RestoreFailed { seq, why } => {
                log!(env, "rtcr: restoring checkpoint {=u64} failed, trying the older one: {=str}", seq, why.as_str())
            }
            Event::StartedAfresh => log!(env, "rtcr: no image could be restored: the child started afresh"),
            Event::LoopCrash { seq: Some(seq), failures } => log!(
                env,
                "rtcr: crash loop: the child crashed before a checkpoint since its restore from checkpoint {=u64} \
                 ({=u32}. time)",
                seq,
                failures
            ),
            Event::LoopCrash { seq: None, .. } => {
                log!(env, "rtcr: crash loop: the child crashed before its first checkpoint since a fresh start")
            }
            Event::CrashSite { ip, addr } => {
                log!(env, "rtcr: the crash: ip {=u64:#x}, fault address {=u64:#x}", ip, addr)
            }
            Event::CpuMoved(m) => log!(
                env,
                "rtcr: thread {=u32} ran on CPU {=u32}, which is not online here (online {=u64:#x}): it runs on \
                 CPU {=u32}",
                m.thread,
                m.from,
                m.online,
                m.to
            ),
            Event::Unserved(u) => log!(
                env,
                "rtcr: the child asked {=str} for something rtcr does not serve (protocol {=i64:#x}, words \
                 {=[?]:#x}): answered -ENOSYS",
                rtcr_core::labels::name(u.service),
                u.protocol,
                u.words.as_slice()
            ),
            Event::Exited { code, restarted } => log!(
                env,
                "rtcr: the child exited with code {=u64}: {=str}",
                code,
                if restarted { "started afresh" } else { "it stays stopped, its last image kept" }
            ),
            Event::ImageAbandoned { seq, failures } => log!(
                env,
                "rtcr: checkpoint {=u64} crashed the child {=u32} times before a checkpoint: not restored again",
                seq,
                failures
            ),
        }
    }
}

/// Enters the kernel debugger with `why` (`l4_kd_enter`), if rtcr has one.
fn jdb(env: &mut KernelEnv, why: &str) {
    let dbg = Cap::<kind::Debugger>::new(base::DEBUGGER);
    if let Ok(true) = l4_sys::task::cap_valid(env, Cap::new(base::TASK), base::DEBUGGER) {
        say!(env, "{why}");
        let _ = l4_sys::debugger::enter(env, dbg, why);
    } else {
        say!(env, "rtcr: jdb asked for, but the kernel gave rtcr no debugger capability");
    }
}

/// rtcr's own check of the child's capability space after a restore.
fn verify(env: &mut KernelEnv, d: &mut Driver<StoreRam>) {
    match d.sup.verify_slots(env) {
        Ok((good, total)) => log!(env, "rtcr: slots verified: {=usize}/{=usize}", good, total),
        Err(e) => log!(env, "rtcr: slot check failed: {}", defmt::Display2Format(&e)),
    }
}

/// Writes the newest image in the store to the log as `rtcr-image` lines
/// (`rtcr_image::dump`); `rtcrctl reassemble` reads them back.
fn dump_image(env: &mut KernelEnv, d: &Driver<StoreRam>) {
    let (_, bytes) = match d.store.latest() {
        Ok(x) => x,
        Err(e) => {
            log!(env, "rtcr: no image to dump: {}", defmt::Display2Format(&e));
            return;
        }
    };
    // latest() verified the whole image; its header names the sequence
    let Ok(seq) = rtcr_image::read_header(&bytes).map(|h| h.sequence) else { return };
    log!(env, "rtcr: dumping checkpoint {=u64} ({=usize} bytes) as rtcr-image lines", seq, bytes.len());
    rtcr_image::dump::write_lines(seq, &bytes, |line| say!(env, "{line}"));
}

/// Bytes of a boot module (rtcr reads modules through its 1:1 view).
pub fn module_bytes(m: &l4_sys::bootinfo::Module<'_>) -> Option<&'static [u8]> {
    use l4_sys::bootinfo::PhysMem;
    crate::boot::IDENTITY.bytes(m.start, m.len() as usize)
}

/// The memory rtcr-core may use: the child's frames.
pub fn windows() -> Vec<(u64, u64)> {
    alloc::vec![(FRAMES_VA, FRAMES_VA + FRAMES_LEN)]
}

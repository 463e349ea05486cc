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
        sigma0_range: SIGMA0_RANGE,
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
pub fn run(mut env: KernelEnv, config: &Config<'_>, child: (&str, &[u8]), restore: Option<(&str, &[u8])>) -> ! {
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
    let spec = child_spec(name, &image, config);
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
    report(&mut env, &mut d, config.jdb);
    if d.sup.seq > 0 {
        verify(&mut env, &mut d);
    }
    let (mut crash_due, mut dump_due) = (config.crash_ms, config.dump_ms);
    let mut cancels_said = 0;
    loop {
        let now = env.clock_us();
        let elapsed_ms = now.saturating_sub(t_start) / 1000;
        if let Some(ms) = crash_due.filter(|ms| elapsed_ms >= *ms) {
            crash_due = config.crash_every_ms.map(|every| ms + every);
            if config.jdb {
                jdb(&mut env, "rtcr: jdb-before-checkpoint: look at the child's object space, then g");
                // the checkpoint the restore will use, taken now; the next
                // periodic one an interval later (not at once: its time
                // passed while the kernel sat in JDB), so that it cannot
                // catch the child between the wild jump and the crash
                d.checkpoint_now(&mut env);
                report(&mut env, &mut d, config.jdb);
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
            report(&mut env, &mut d, config.jdb);
            stop(&mut env, format_args!("supervising '{name}' failed: {e}"));
        }
        report(&mut env, &mut d, config.jdb);
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

/// Logs (and forgets) what the driver did since the last call.
fn report(env: &mut KernelEnv, d: &mut Driver<StoreRam>, jdb_after_restore: bool) {
    for e in core::mem::take(&mut d.events) {
        match e {
            Event::Checkpoint { stats, slot, bytes } => log!(
                env,
                "rtcr: checkpoint {=u64}: {=usize} pages copied, pause {=u64} us, {=usize} threads, image {=usize} bytes in \
                 slot {=char}",
                stats.seq,
                stats.pages_copied,
                stats.pause_us,
                stats.threads,
                bytes,
                if slot == 0 { 'A' } else { 'B' }
            ),
            Event::Crash { thread, code } => {
                log!(env, "rtcr: child thread {=u32} crashed (trap/exception class {=u64:#x})", thread, code)
            }
            Event::Restored { seq, backoff_us, took_us } => {
                log!(
                    env,
                    "rtcr: restored from checkpoint {=u64} in {=u64} us (after a backoff of {=u64} us)",
                    seq,
                    took_us,
                    backoff_us
                );
                for (what, us) in d.sup.restore_phases.clone() {
                    log!(env, "rtcr: restore phase: {=str} {=u64} us", what, us);
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
            Event::RestoreFailed { seq, why } => log!(
                env,
                "rtcr: restoring checkpoint {=u64} failed, trying the older one: {=str}",
                seq,
                why.as_str()
            ),
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

//! rtcr's boot path: read what the kernel and bootstrap hand over, then
//! start (or restore) the child and serve it.
//!
//! 1. the KIP from sigma0: the kernel clock and the boot-module info;
//! 2. the configuration, the words of rtcr's `roottask` line
//!    (`rtcr_boot::config`); a bad word stops rtcr with a line naming it;
//! 3. the heap (RAM from sigma0);
//! 4. only when the configuration asks: `report` and `selfcheck`
//!    ([`crate::diag`]), `probe` ([`crate::probe`]);
//! 5. the child's boot module (and an image module to restore from), handed
//!    to [`crate::run::run`], which starts the child and serves it for ever.
//!
//! A default boot prints a few lines: rtcr's version, its configuration,
//! then (run.rs) the child, the store and the time from rtcr's first
//! instruction to the child's start. This file's lines are plain text, so
//! they read without the defmt decoder; a fatal one ends with `rtcr: stopped`.

use core::fmt::Write;
use core::sync::atomic::{AtomicU64, Ordering};

use l4_sys::arch::CurrentThread;
use l4_sys::bootinfo::{BootInfo, ModKind, PhysMem};
use l4_sys::cap::{base, kind, Cap};
use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::kip::Kip;
use l4_sys::{debugger, ipc, sigma0, task, Timeout};

pub(crate) const ARCH: &str = if cfg!(target_arch = "x86_64") { "x86_64" } else { "aarch64" };

/// Physical memory as the root task sees it: sigma0 maps the root task's
/// Bootloader regions (its ELF, the modules, the module info) 1:1 on first
/// touch, so a physical address is a valid pointer to them.
pub(crate) struct Identity;
pub(crate) static IDENTITY: Identity = Identity;

impl PhysMem for Identity {
    fn bytes(&self, addr: u64, len: usize) -> Option<&[u8]> {
        if addr == 0 || addr.checked_add(len as u64).is_none() {
            return None;
        }
        // SAFETY: the root task runs with virtual = physical for memory sigma0
        // gives it; the boot-module info and module strings bootstrap made are
        // root-owned Bootloader memory (KIP memory descriptors), which sigma0
        // maps on the first fault. The bytes are never written while borrowed.
        Some(unsafe { core::slice::from_raw_parts(addr as *const u8, len) })
    }
}

/// One plain-text line to the kernel log.
macro_rules! say {
    ($k:expr, $($arg:tt)*) => {{
        use core::fmt::Write as _;
        let log = l4_sys::cap::Cap::<l4_sys::cap::kind::Log>::new(l4_sys::cap::base::LOG);
        let _ = writeln!(l4_sys::log::LogWriter::new($k, log), $($arg)*);
    }};
}
pub(crate) use say;

/// The KIP clock (µs) when rtcr's first instruction ran.
static STARTED_US: AtomicU64 = AtomicU64::new(0);

/// The KIP clock (µs) when rtcr's first instruction ran (0 before the KIP
/// is mapped).
pub(crate) fn started_us() -> u64 {
    STARTED_US.load(Ordering::Relaxed)
}

/// Called by the entry stub with a valid stack. Never returns.
#[no_mangle]
pub extern "C" fn rtcr_main() -> ! {
    // rtcr's first instruction, on the counter: the KIP clock is not mapped yet
    let stamp_at_entry = l4_sys::arch::stamp_now();
    // SAFETY: this is the root task's first thread, bound to its UTCB by the
    // kernel, and this is the only CurrentThread made on it (the panic
    // handler makes another only once this one can never run again).
    let mut k = unsafe { CurrentThread::new() };

    // the KIP from sigma0, mapped 1:1 at its physical address
    let whole = Fpage::mem(0, 63, MemRights::empty());
    let kip_addr = match sigma0::map_kip(&mut k, Cap::new(base::PAGER), whole) {
        Ok(a) => a,
        Err(e) => stop(&mut k, format_args!("sigma0 gave no KIP (no clock, no boot modules, no configuration): {e}")),
    };
    crate::logger::set_kip(kip_addr);
    let nominal_hz = crate::env::nominal_stamp_hz(kip_addr);
    // SAFETY: sigma0 mapped the KIP executable (RX) at `kip_addr`, and we
    // run on the architecture it was built for.
    let clock = unsafe { l4_sys::kip::clock_us(kip_addr as *const u8) };
    let stamp = l4_sys::arch::stamp_now();
    // the clock at the first instruction: the counter's time since then
    // (one sigma0 call) taken off, at its nominal rate
    let before_us =
        (u128::from(stamp.saturating_sub(stamp_at_entry)) * 1_000_000 / u128::from(nominal_hz.max(1))) as u64;
    STARTED_US.store(clock.saturating_sub(before_us), Ordering::Relaxed);

    let kip = match Kip::parse(kip_page(kip_addr)) {
        Ok(kip) => kip,
        Err(e) => stop(&mut k, format_args!("the page sigma0 sent at {kip_addr:#x} is not a KIP: {e:?}")),
    };
    let bi = match BootInfo::parse(&IDENTITY, kip.user_ptr()) {
        Ok(bi) => bi,
        Err(e) => stop(&mut k, format_args!("no boot-module info from bootstrap (so no configuration): {e:?}")),
    };
    say!(
        &mut k,
        "rtcr: root task up on {ARCH}: rtcr {} at KIP clock {} us; defmt lines read with `rtcrctl log --elf <rtcr>`",
        env!("CARGO_PKG_VERSION"),
        started_us()
    );

    // the configuration: the roottask line of modules.list
    let args = bi.roottask().map(|m| m.args()).unwrap_or("");
    let config = match rtcr_boot::config::parse(args) {
        Ok(c) => c,
        Err(e) => stop(&mut k, format_args!("configuration error: {e}; the roottask line was '{args}'")),
    };
    let mut flags = crate::diag::Line::new();
    for (on, word) in [(config.report, "report"), (config.selfcheck, "selfcheck"), (config.probe, "probe")] {
        if on {
            let _ = write!(flags, ", {word}");
        }
    }
    say!(
        &mut k,
        "rtcr: config: child {}, checkpoint every {} ms, store {} KiB, quotas {} objects / {} threads / {} pages, \
         restore {}{}",
        config.child.unwrap_or("none"),
        config.interval_ms,
        config.store_kib,
        config.max_objects,
        config.max_threads,
        config.max_pages,
        config.restore.unwrap_or("-"),
        flags.as_str()
    );

    // names for JDB (two calls; said only in the report)
    let named = task::cap_valid(&mut k, Cap::new(base::TASK), base::DEBUGGER).is_ok_and(|v| v).then(|| {
        let dbg = Cap::new(base::DEBUGGER);
        let r1 = debugger::set_object_name(&mut k, dbg, Cap::<kind::Task>::new(base::TASK), "rtcr");
        let r2 = debugger::set_object_name(&mut k, dbg, Cap::<kind::Thread>::new(base::THREAD), "rtcr.main");
        (r1, r2)
    });
    if config.report {
        crate::diag::report(&mut k, kip_addr, &kip, &bi);
        if let Some((r1, r2)) = named {
            say!(&mut k, "rtcr: named task/thread in JDB: {:?} {:?}", r1, r2);
        }
    }

    // the shadow copy of the child's memory and one image being encoded
    // live here (`heap_kib`, 16 MiB by default)
    match crate::heap::init(&mut k, config.heap_kib / 4) {
        Ok(pages) if config.report => {
            say!(&mut k, "rtcr: heap {} KiB at {:#x} from sigma0", pages * 4, crate::heap::HEAP_VA)
        }
        Ok(_) => {}
        Err(e) => stop(&mut k, format_args!("sigma0 gave no RAM for rtcr's heap: {e}")),
    }
    let mut stamp_hz = nominal_hz;
    if config.selfcheck {
        crate::diag::image_self_check(&mut k);
        let (back, measured) = crate::diag::env_self_check(k, kip_addr, nominal_hz);
        k = back;
        stamp_hz = rtcr_core::checkpoint::stamp_hz_in_kernel_time(nominal_hz, measured);
        if stamp_hz != nominal_hz {
            say!(
                &mut k,
                "rtcr: stamp counter calibrated against the KIP clock: {stamp_hz} Hz (nominal {nominal_hz} Hz)"
            );
        }
    }
    if config.probe {
        let utcb = k.utcb_addr();
        crate::probe::run(&mut k, utcb, Some(kip_addr), config.probe_dump);
    }

    let Some(child) = config.child else {
        say!(&mut k, "rtcr: no child (child=none): nothing to serve, sleeping");
        loop {
            let _ = ipc::sleep(&mut k, Timeout::NEVER);
        }
    };
    let child_bytes = match find_module(&mut k, &bi, child) {
        Ok(b) => b,
        Err(why) => stop(&mut k, format_args!("child module '{child}': {why}")),
    };
    let restore = match config.restore.map(|r| (r, find_module(&mut k, &bi, r))) {
        None => None,
        Some((r, Ok(b))) => Some((r, b)),
        Some((r, Err(why))) => stop(&mut k, format_args!("image module '{r}': {why}")),
    };
    // the boot modules an L4Re child sees under rom/ (mapped like the child's)
    let mut roms = alloc::vec::Vec::new();
    for m in bi.modules().flatten().filter(|m| m.kind == ModKind::Generic) {
        if Some(m.name()) == config.restore || m.start % 4096 != 0 {
            continue;
        }
        if let Ok(b) = find_module(&mut k, &bi, m.name()) {
            roms.push(rtcr_core::Rom {
                name: alloc::string::String::from(m.name()),
                addr: b.as_ptr() as u64,
                len: b.len() as u64,
            });
        }
    }
    // the IRQ proxies' own receiver (rtcr_core::fast_path)
    let fast_path = match crate::fast_path::start(&mut k) {
        Ok(f) => Some(f),
        Err(e) => {
            say!(&mut k, "rtcr: no IRQ fast path ({e}): the IRQ proxies are served by rtcr's main thread");
            None
        }
    };
    let mut env = crate::env::KernelEnv::new(k, kip_addr, stamp_hz, crate::run::windows());
    // the counter against the KIP clock while the child runs (instead of a
    // sleep before it starts)
    env.calibrate(nominal_hz);
    crate::run::run(env, &config, (child, child_bytes), restore, roms, fast_path)
}

/// Stops rtcr with a last line.
fn stop(k: &mut CurrentThread, why: core::fmt::Arguments<'_>) -> ! {
    say!(k, "rtcr: {why}");
    say!(k, "rtcr: stopped");
    loop {
        let _ = ipc::sleep(k, Timeout::NEVER);
    }
}

/// The bytes of the boot module named `name`.
fn find_module(
    k: &mut CurrentThread,
    bi: &BootInfo<'static, Identity>,
    name: &str,
) -> Result<&'static [u8], &'static str> {
    let m = bi.find(name).ok_or("no boot module of that name (modules.list 'module' lines)")?;
    // sigma0 hands a module's pages to the root task (they are its
    // Bootloader memory) but maps them only on an explicit request, not on
    // a page fault: ask for them at their physical address, in blocks
    let first = m.start & !0xfff;
    let len = ((m.end + 0xfff) & !0xfff).saturating_sub(first);
    let (_, refused) = crate::heap::map_blocks(first, len, |order, at| {
        let window = Fpage::mem(at, order, MemRights::empty());
        sigma0::map_ram(k, Cap::new(base::PAGER), at, order, window).map(|_| ())
    });
    if refused.is_some() {
        return Err("sigma0 refused the module's pages");
    }
    crate::run::module_bytes(&m).ok_or("module memory not readable")
}

/// The KIP page where sigma0 mapped it (`sigma0::map_kip`'s answer).
pub(crate) fn kip_page(kip_addr: u64) -> &'static [u8] {
    // SAFETY: `kip_addr` is where sigma0 mapped the KIP page (4 KiB, read +
    // execute) into this task, at its physical address, for rtcr's whole
    // life; the kernel only changes the clock word in it, read as plain data.
    unsafe { core::slice::from_raw_parts(kip_addr as *const u8, 4096) }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: a panic never returns to the code that held the main thread's
    // CurrentThread (panic = abort, this handler diverges), so no borrow of
    // the UTCB made through it is used again; this handle is the only one
    // that touches the UTCB from here on.
    let mut k = unsafe { CurrentThread::new() };
    say!(&mut k, "rtcr: PANIC: {info}");
    loop {
        let _ = ipc::sleep(&mut k, Timeout::NEVER);
    }
}

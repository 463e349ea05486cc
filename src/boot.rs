//! The foundation stub: say hello through the kernel log, report the facts a
//! developer checks first on a new kernel build, then sleep.
//!
//! Each line starts with `rtcr:` so scripts can pick them out of the serial
//! log. The probes double as a check of l4-sys's encoders on the real kernel:
//! log write, task cap_valid, sigma0 KIP request, debugger naming, IPC sleep.

use core::fmt::Write;

use l4_sys::arch::CurrentThread;
use l4_sys::bootinfo::{BootInfo, PhysMem};
use l4_sys::cap::{base, kind, Cap, CapIdx};
use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::kip::Kip;
use l4_sys::log::LogWriter;
use l4_sys::{debugger, ipc, sigma0, task, Timeout};

const ARCH: &str = if cfg!(target_arch = "x86_64") { "x86_64" } else { "aarch64" };
const LOG: Cap<kind::Log> = Cap::new(base::LOG);
const ME: Cap<kind::Task> = Cap::new(base::TASK);

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

macro_rules! say {
    ($k:expr, $($arg:tt)*) => {{
        let _ = writeln!(LogWriter::new($k, LOG), $($arg)*);
    }};
}

/// Called by the entry stub with a valid stack. Never returns.
#[no_mangle]
pub extern "C" fn rtcr_main() -> ! {
    // SAFETY: this is the root task's first thread, bound to its UTCB by the
    // kernel, and this is the only CurrentThread made on it (the panic
    // handler makes another only once this one can never run again).
    let mut k = unsafe { CurrentThread::new() };
    let utcb = k.utcb_addr();
    say!(&mut k, "rtcr: root task up on {ARCH}, UTCB at {utcb:#x}");

    // Which initial capabilities exist (fact sheet §10 item 9).
    let mut line = Line::new();
    for i in 1..=11u64 {
        if let Ok(true) = task::cap_valid(&mut k, ME, CapIdx(i)) {
            let _ = write!(line, " {i}");
        }
    }
    say!(&mut k, "rtcr: initial caps valid:{}", line.as_str());

    // The KIP from sigma0, mapped 1:1 at its physical address.
    let whole = Fpage::mem(0, 63, MemRights::empty());
    let (args, kip) = match sigma0::map_kip(&mut k, Cap::new(base::PAGER), whole) {
        Ok(kip_addr) => {
            crate::logger::set_kip(kip_addr);
            (report_kip(&mut k, kip_addr), Some(kip_addr))
        }
        Err(e) => {
            say!(&mut k, "rtcr: sigma0 KIP request failed: {e}");
            ("", None)
        }
    };

    if let Ok(true) = task::cap_valid(&mut k, ME, base::DEBUGGER) {
        let dbg = Cap::new(base::DEBUGGER);
        let r1 = debugger::set_object_name(&mut k, dbg, Cap::<kind::Task>::new(base::TASK), "rtcr");
        let r2 = debugger::set_object_name(&mut k, dbg, Cap::<kind::Thread>::new(base::THREAD), "rtcr.main");
        say!(&mut k, "rtcr: named task/thread in JDB: {:?} {:?}", r1, r2);
    }

    // the configuration: the roottask line of modules.list
    let config = match rtcr_boot::config::parse(args) {
        Ok(c) => c,
        Err(e) => {
            say!(&mut k, "rtcr: configuration error: {e}; the roottask line was '{args}'");
            say!(&mut k, "rtcr: stopped");
            loop {
                let _ = ipc::sleep(&mut k, Timeout::NEVER);
            }
        }
    };
    say!(
        &mut k,
        "rtcr: config: child {}, checkpoint every {} ms, store {} KiB, quotas {} objects / {} threads / {} pages, \
         restore {}",
        config.child.unwrap_or("none"),
        config.interval_ms,
        config.store_kib,
        config.max_objects,
        config.max_threads,
        config.max_pages,
        config.restore.unwrap_or("-")
    );
    let mut stamp_hz = kip.map(crate::probe::stamp_hz).unwrap_or(1);
    match crate::heap::init(&mut k, HEAP_PAGES) {
        Ok(pages) => {
            say!(&mut k, "rtcr: heap {} KiB at {:#x} from sigma0", pages * 4, crate::heap::HEAP_VA);
            image_self_check(&mut k);
            if let Some(kip) = kip {
                let mut env = crate::env::KernelEnv::new(
                    k,
                    kip,
                    crate::probe::stamp_hz(kip),
                    alloc::vec![(ENV_TEST_VA, ENV_TEST_VA + 4096)],
                );
                let measured = env_self_check(&mut env);
                k = env.into_thread();
                stamp_hz = calibrated_stamp_hz(&mut k, stamp_hz, measured);
            }
        }
        Err(e) => say!(&mut k, "rtcr: no heap: sigma0 gave no RAM: {e}"),
    }
    if config.probe {
        crate::probe::run(&mut k, utcb, kip, config.probe_dump);
    }
    if let (Some(child), Some(kip)) = (config.child, kip) {
        let child_bytes = match find_module(&mut k, kip, child) {
            Ok(b) => b,
            Err(why) => stop(&mut k, format_args!("child module '{child}': {why}")),
        };
        let restore = match config.restore.map(|r| (r, find_module(&mut k, kip, r))) {
            None => None,
            Some((r, Ok(b))) => Some((r, b)),
            Some((r, Err(why))) => stop(&mut k, format_args!("image module '{r}': {why}")),
        };
        let env = crate::env::KernelEnv::new(k, kip, stamp_hz, crate::run::windows());
        crate::run::run(env, &config, (child, child_bytes), restore);
    }

    say!(&mut k, "rtcr: stub done, sleeping");
    loop {
        let _ = ipc::sleep(&mut k, Timeout::NEVER);
    }
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
fn find_module(k: &mut CurrentThread, kip_addr: u64, name: &str) -> Result<&'static [u8], &'static str> {
    let kip = Kip::parse(kip_page(kip_addr)).map_err(|_| "no KIP")?;
    let bi = BootInfo::parse(&IDENTITY, kip.user_ptr()).map_err(|_| "no boot-module info from bootstrap")?;
    let m = bi.find(name).ok_or("no boot module of that name (modules.list 'module' lines)")?;
    // sigma0 hands a module's pages to the root task (they are its
    // Bootloader memory) but maps them only on an explicit request, not on
    // a page fault: ask for each page at its physical address
    let mut page = m.start & !0xfff;
    while page < m.end {
        let window = Fpage::mem(page, 12, MemRights::empty());
        sigma0::map_ram(k, Cap::new(base::PAGER), page, 12, window).map_err(|_| "sigma0 refused the module's pages")?;
        page += 4096;
    }
    crate::run::module_bytes(&m).ok_or("module memory not readable")
}

/// The KIP page where sigma0 mapped it (`sigma0::map_kip`'s answer).
fn kip_page(kip_addr: u64) -> &'static [u8] {
    // SAFETY: `kip_addr` is where sigma0 mapped the KIP page (4 KiB, read +
    // execute) into this task, at its physical address, for rtcr's whole
    // life; the kernel only changes the clock word in it, read as plain data.
    unsafe { core::slice::from_raw_parts(kip_addr as *const u8, 4096) }
}

/// Reports the KIP and the boot modules; returns rtcr's own arguments.
fn report_kip(k: &mut CurrentThread, kip_addr: u64) -> &'static str {
    let kip = match Kip::parse(kip_page(kip_addr)) {
        Ok(kip) => kip,
        Err(e) => {
            say!(k, "rtcr: page at {kip_addr:#x} is not a KIP: {e:?}");
            return "";
        }
    };
    say!(k, "rtcr: KIP at {kip_addr:#x}, version {:#x}, {}", kip.version(), kip.version_string());
    let mut feats = Line::new();
    for f in kip.features() {
        let _ = write!(feats, " {f}");
    }
    say!(k, "rtcr: KIP features:{}", feats.as_str());
    say!(k, "rtcr: platform {}, explicit_reply_caps {}", kip.platform_name(), kip.has_feature("explicit_reply_caps"));
    // SAFETY: the KIP is mapped executable (sigma0 maps it RX) at `kip_addr`
    // and we run on the architecture it was built for.
    let t0 = unsafe { l4_sys::kip::clock_us(kip_addr as *const u8) };
    let _ = ipc::sleep(k, Timeout::from_us(10_000));
    // SAFETY: as above.
    let t1 = unsafe { l4_sys::kip::clock_us(kip_addr as *const u8) };
    say!(k, "rtcr: KIP clock {t0} us; a 10 ms IPC sleep took {} us", t1.saturating_sub(t0));
    for d in kip.mem_descs().filter(|d| d.ty != l4_sys::kip::MemType::Undefined) {
        say!(k, "rtcr: mem {:#014x}-{:#014x} {:?} sub {} virt {}", d.start, d.end, d.ty, d.sub_type, d.is_virtual);
    }
    match BootInfo::parse(&IDENTITY, kip.user_ptr()) {
        Ok(bi) => {
            for (i, m) in bi.modules().enumerate() {
                match m {
                    Ok(m) => say!(k, "rtcr: module {i}: {:?} {:#x}+{:#x} '{}'", m.kind, m.start, m.len(), m.cmdline),
                    Err(e) => say!(k, "rtcr: module {i}: unreadable: {e:?}"),
                }
            }
            bi.roottask().map(|m| m.args()).unwrap_or("")
        }
        Err(e) => {
            say!(k, "rtcr: no boot-module info: {e:?}");
            ""
        }
    }
}

/// A fixed-size line buffer (no heap yet); text beyond 160 bytes is cut.
pub(crate) struct Line {
    buf: [u8; 160],
    len: usize,
}

impl Line {
    pub(crate) fn new() -> Self {
        Line { buf: [0; 160], len: 0 }
    }

    pub(crate) fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let n = s.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
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

/// Pages of heap rtcr asks sigma0 for (16 MiB: the shadow copy of the
/// child's memory and one image being encoded live here).
const HEAP_PAGES: u64 = 4096;

/// The image format and the A/B store, run on the kernel rtcr boots on:
/// a checkpoint of one page is written twice into a store in heap memory,
/// the newest one reads back equal, and a flipped byte in it makes the
/// store fall back to the older one with the reason.
fn image_self_check(k: &mut CurrentThread) {
    use alloc::vec;
    use rtcr_image::{Checkpoint, MemRegion, PageRecord, Store};
    let cp = |seq: u64| Checkpoint {
        child: "self-check".into(),
        clock_us: seq,
        utcb_area: (0xB300_0000, 12),
        objects: vec![],
        caps: vec![],
        threads: vec![],
        pages: vec![PageRecord { vaddr: 0x40_0000, rights: 6, data: vec![seq as u8; 4096] }],
    };
    let images = (1..=2u64).map(|seq| rtcr_core::encode_image(crate::env::ARCH, seq, &cp(seq)));
    let mut store = Store::new(MemRegion::zeroed(32 << 10));
    for img in images {
        match img.map_err(|e| alloc::format!("{e}")).and_then(|b| store.write(&b).map_err(|e| alloc::format!("{e}"))) {
            Ok(slot) => say!(k, "rtcr: image self-check: wrote slot {slot:?}"),
            Err(e) => {
                say!(k, "rtcr: image self-check FAILED: {e}");
                return;
            }
        }
    }
    let newest = store.latest().map(|(slot, b)| (slot, rtcr_image::decode(&b).map(|(m, c)| (m.sequence, c))));
    let ok_newest = matches!(&newest, Ok((_, Ok((2, c))))  if *c == cp(2));
    // flip one byte of the newest slot's body: the store must use the older one
    let (slot, _) = match store.latest() {
        Ok(x) => x,
        Err(e) => {
            say!(k, "rtcr: image self-check FAILED: {e}");
            return;
        }
    };
    let offset = store.slot_offset(slot) + 100;
    let mut region = store.into_inner();
    region.0[offset] ^= 0x40;
    let store = Store::new(region);
    let older = store.latest().map(|(_, b)| rtcr_image::decode(&b).map(|(m, _)| m.sequence));
    let ok_fallback = matches!(older, Ok(Ok(1)));
    say!(
        k,
        "rtcr: image self-check on this kernel: newest reads back equal: {ok_newest}; after a flipped byte the store \
         falls back to sequence 1: {ok_fallback}; heap free {} KiB",
        crate::heap::free() / 1024
    );
}

/// A page of rtcr's own for the Env self-check (no RAM or device there).
const ENV_TEST_VA: u64 = 0x31_0000_0000;

/// rtcr-core's environment on this kernel, checked piece by piece: rtcr's
/// memory through the window check, the FPU save/load pair, and the
/// entry-stamp counter against the KIP clock. Returns the counter's rate as
/// measured against the KIP clock (Hz), if it could be measured.
fn env_self_check(env: &mut crate::env::KernelEnv) -> Option<u64> {
    use rtcr_core::Env;
    let window = Fpage::mem(ENV_TEST_VA, 12, MemRights::empty());
    if let Err(e) = sigma0::map_any(env, Cap::new(base::PAGER), 12, window) {
        say!(env, "rtcr: env self-check: no page from sigma0: {e}");
        return None;
    }
    let pattern: alloc::vec::Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    let mut back = alloc::vec![0u8; 4096];
    let memory_ok =
        env.write_mem(ENV_TEST_VA, &pattern).is_ok() && env.read_mem(ENV_TEST_VA, &mut back).is_ok() && back == pattern;
    let stray_refused =
        env.read_mem(ENV_TEST_VA + 4000, &mut back[..200]).is_err() && env.write_mem(0x1000, &pattern[..8]).is_err();
    crate::probe::own_fpu_reg(Some(0x1111_2222_3333_4444));
    let state = env.fpu_save();
    crate::probe::own_fpu_reg(Some(0x5555));
    env.fpu_load(&state);
    let fpu_ok = crate::probe::own_fpu_reg(None) == 0x1111_2222_3333_4444 && state.len() == crate::env::FPU_BYTES;
    let (t0, s0) = (env.clock_us(), env.stamp_now());
    let _ = ipc::sleep(env, Timeout::from_us(200_000));
    let (t1, s1) = (env.clock_us(), env.stamp_now());
    let hz = env.stamp_hz().max(1);
    let stamp_us = (s1.saturating_sub(s0) as u128 * 1_000_000 / hz as u128) as u64;
    let permille = stamp_us * 1000 / t1.saturating_sub(t0).max(1);
    say!(
        env,
        "rtcr: env self-check: memory round trip {memory_ok}, stray addresses refused {stray_refused}, FPU save/load \
         ({} bytes) {fpu_ok}, stamp counter vs KIP clock over a 200 ms sleep: {permille} per mille",
        state.len()
    );
    let elapsed_us = t1.saturating_sub(t0);
    (elapsed_us >= 100_000).then(|| (s1.saturating_sub(s0) as u128 * 1_000_000 / elapsed_us as u128) as u64)
}

/// The entry-stamp counter's rate for rtcr-core (see
/// `rtcr_core::checkpoint::stamp_hz_in_kernel_time`), said when it is not
/// the nominal one.
fn calibrated_stamp_hz(k: &mut CurrentThread, nominal: u64, measured: Option<u64>) -> u64 {
    let hz = rtcr_core::checkpoint::stamp_hz_in_kernel_time(nominal, measured);
    if hz != nominal {
        say!(k, "rtcr: stamp counter calibrated against the KIP clock: {hz} Hz (nominal {nominal} Hz)");
    }
    hz
}

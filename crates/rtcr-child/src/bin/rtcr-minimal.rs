//! rtcr-minimal: a child that uses nothing but the Fiasco root-task
//! conventions, so it runs unchanged as the real root task (the kernel's
//! sigma0 is its pager) and as an rtcr child.
//!
//! It says hello, reports which of the initial capabilities 1–7 are valid,
//! asks its pager for the KIP and for one page of RAM — both received into
//! the whole address space, as a root task does, so each lands where the
//! pager says: sigma0 maps them 1:1 at their physical address, rtcr at the
//! address it records for the child (its "sigma0 range"; rtcr cannot see a
//! smaller receive window, and a page received elsewhere would be unknown to
//! it after the first checkpoint) — keeps a counter in that page and then
//! ticks: every 100 ms it increments the counter and logs it with the KIP
//! clock. Errors are logged, never panicked on.
//!
//! On a host OS this file builds a tiny program that says how to build the
//! real thing.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod minimal {
    use core::fmt::Write;

    use l4_sys::arch::CurrentThread;
    use l4_sys::cap::CapIdx;
    use l4_sys::fpage::{Fpage, MemRights};
    use l4_sys::kip::Kip;
    use l4_sys::{ipc, sigma0, task, Timeout};
    use rtcr_child::{say, slots, Line};

    l4_sys::root_task_entry!(crate::minimal::minimal_main);

    extern "C" {
        /// First byte of the image (linker script).
        static __child_start: u8;
        /// End of the image, .bss and main stack included (linker script).
        static __child_end: u8;
    }

    /// The image's address range.
    fn image() -> (u64, u64) {
        (&raw const __child_start as u64, &raw const __child_end as u64)
    }

    /// The KIP, if the pager mapped one at `addr`.
    fn kip_at(k: &mut CurrentThread, addr: u64) -> bool {
        // SAFETY: the pager just mapped the KIP page (4 KiB, readable) at
        // `addr`; the kernel changes only its clock word, read as plain data.
        let page = unsafe { core::slice::from_raw_parts(addr as *const u8, 4096) };
        match Kip::parse(page) {
            Ok(kip) => {
                say!(k, "minimal: KIP at {addr:#x}, version {:#x}", kip.version());
                true
            }
            Err(e) => {
                say!(k, "minimal: KIP check failed: page at {addr:#x} is no KIP: {e:?}");
                false
            }
        }
    }

    /// The kernel clock in µs, 0 without a KIP.
    fn clock(kip: Option<u64>) -> u64 {
        match kip {
            // SAFETY: `a` is where the pager mapped the KIP (checked by
            // `kip_at`), mapped executable (sigma0, and rtcr in its place, map
            // it RX), and we run on the architecture it was made for.
            Some(a) => unsafe { l4_sys::kip::clock_us(a as *const u8) },
            None => 0,
        }
    }

    /// The first (and only) thread.
    pub extern "C" fn minimal_main() -> ! {
        rtcr_child::set_panic_hook(rtcr_child::log_panic);
        // SAFETY: this is the task's first thread, bound to its UTCB by the
        // kernel or rtcr, and this is the only CurrentThread made on it (the
        // panic handler makes another only once this one can never run again).
        let mut k = unsafe { CurrentThread::new() };
        let k = &mut k;
        say!(k, "minimal: hello");

        let mut valid = Line::new();
        for i in 1..=7u64 {
            match task::cap_valid(k, slots::TASK, CapIdx(i)) {
                Ok(true) => {
                    let _ = write!(valid, " {i}");
                }
                Ok(false) => {}
                Err(e) => say!(k, "minimal: cap_valid {i} failed: {e}"),
            }
        }
        say!(k, "minimal: caps valid:{}", valid.as_str());

        let whole = Fpage::mem(0, 63, MemRights::empty());
        let kip = match sigma0::map_kip(k, slots::PAGER, whole) {
            Ok(a) if kip_at(k, a) => Some(a),
            Ok(_) => None,
            Err(e) => {
                say!(k, "minimal: KIP request failed: {e}");
                None
            }
        };
        say!(k, "minimal: clock {} us", clock(kip));

        let page = ram_page(k);
        let mut local = 0u64;
        loop {
            let n = match page {
                Some(p) => {
                    // SAFETY: `p` is the page the pager mapped read-write
                    // (see `ram_page`, aligned, 4 KiB); only this thread uses it.
                    unsafe {
                        let n = p.read_volatile().wrapping_add(1);
                        p.write_volatile(n);
                        n
                    }
                }
                None => {
                    local = local.wrapping_add(1);
                    local
                }
            };
            if let Err(e) = ipc::sleep(k, Timeout::from_us(100_000)) {
                say!(k, "minimal: sleep failed: {e}");
            }
            say!(k, "minimal: tick {n} clock {}", clock(kip));
        }
    }

    /// One page of RAM from the pager, with a zero counter in it.
    fn ram_page(k: &mut CurrentThread) -> Option<*mut u64> {
        let whole = Fpage::mem(0, 63, MemRights::empty());
        let at = match sigma0::map_any(k, slots::PAGER, 12, whole) {
            Ok(at) => at,
            Err(e) => {
                say!(k, "minimal: RAM page failed: {e}");
                return None;
            }
        };
        let (start, end) = image();
        if at == 0 || (at < end && start < at + 4096) {
            say!(k, "minimal: RAM page failed: {at:#x} is null or inside the image {start:#x}-{end:#x}");
            return None;
        }
        let p = at as *mut u64;
        // SAFETY: the pager mapped a page of RAM read-write at `at` (the
        // address it sent, received into the whole address space), which is
        // page aligned, not null and outside the image (checked above);
        // nothing else in this task refers to it.
        unsafe { p.write_volatile(0) };
        say!(k, "minimal: RAM page at {at:#x}, counter there");
        Some(p)
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "rtcr-minimal is a child for rtcr (or a Fiasco.OC root task): build it with\n  \
         cargo build --release -p rtcr-child --bin rtcr-minimal --target x86_64-unknown-none\n  \
         cargo build --release -p rtcr-child --bin rtcr-minimal --target aarch64-unknown-none\n\
         and boot it with scripts/qemu-boot.sh --elf target/<target>/release/rtcr-minimal."
    );
    std::process::exit(2);
}

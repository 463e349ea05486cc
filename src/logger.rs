//! rtcr's log through `defmt`, over the kernel log capability.
//!
//! Why defmt: the supervisor's lines (one per checkpoint, ten a second)
//! are formatted on the host, not on the ECU; the target sends a string's
//! index and its arguments. Why not defmt's usual transports: rtcr has no
//! RTT probe or UART of its own, only the kernel's log capability, which
//! carries text. So the encoded frames are buffered here ([`defmt`]'s
//! global logger) and written out as `rtcr-defmt <hex>` lines by
//! [`drain`], which the caller runs after logging with its own kernel
//! handle (the logger never touches the UTCB, so it cannot disturb a
//! message rtcr is handling). `rtcrctl log --elf <rtcr>` (and
//! scripts/qemu-boot.sh, on the fly) turns them back into text.

use core::fmt::Write;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use l4_sys::cap::{base, kind, Cap};
use l4_sys::Kernel;

/// Encoded bytes waiting for [`drain`].
static PENDING: spin::Mutex<heapless::Vec<u8, 4096>> = spin::Mutex::new(heapless::Vec::new());
/// Bytes lost because [`PENDING`] was full (reported by the next drain).
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Set while a frame is being encoded (defmt's acquire/release).
static TAKEN: AtomicBool = AtomicBool::new(false);
/// Where the KIP is mapped (the timestamps' clock), 0 before it is known.
static KIP: AtomicU64 = AtomicU64::new(0);
/// defmt's frame encoder; only touched between acquire and release.
static ENCODER: spin::Mutex<defmt::Encoder> = spin::Mutex::new(defmt::Encoder::new());

/// Bytes per `rtcr-defmt` line (hex doubles them: well under the kernel
/// log's 488-byte chunk).
const LINE_BYTES: usize = 160;

/// Timestamps come from the KIP clock once rtcr has mapped the KIP.
pub fn set_kip(kip: u64) {
    KIP.store(kip, Ordering::Relaxed);
}

fn now_us() -> u64 {
    match KIP.load(Ordering::Relaxed) {
        0 => 0,
        // SAFETY: `set_kip` is given the address where sigma0 mapped the
        // KIP; it stays mapped for rtcr's lifetime and is only read.
        kip => unsafe { l4_sys::kip::clock_us(kip as *const u8) },
    }
}

defmt::timestamp!("{=u64:us}", now_us());

fn push(bytes: &[u8]) {
    let mut p = PENDING.lock();
    if p.extend_from_slice(bytes).is_err() {
        DROPPED.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    }
}

#[defmt::global_logger]
struct Logger;

// SAFETY: rtcr logs from one thread; acquire panics on re-entry (as the
// trait asks), so the encoder is used by one frame at a time.
unsafe impl defmt::Logger for Logger {
    fn acquire() {
        if TAKEN.swap(true, Ordering::Acquire) {
            panic!("defmt logger re-entered");
        }
        ENCODER.lock().start_frame(push);
    }

    unsafe fn flush() {}

    unsafe fn release() {
        ENCODER.lock().end_frame(push);
        TAKEN.store(false, Ordering::Release);
    }

    unsafe fn write(bytes: &[u8]) {
        ENCODER.lock().write(bytes, push);
    }
}

/// Writes the frames logged so far to the kernel log as `rtcr-defmt` lines.
pub fn drain<K: Kernel>(k: &mut K) {
    let bytes: heapless::Vec<u8, 4096> = core::mem::take(&mut *PENDING.lock());
    let log: Cap<kind::Log> = Cap::new(base::LOG);
    let mut line: heapless::String<{ 12 + 2 * LINE_BYTES }> = heapless::String::new();
    for chunk in bytes.chunks(LINE_BYTES) {
        line.clear();
        let _ = line.push_str("rtcr-defmt ");
        for b in chunk {
            let _ = write!(line, "{b:02x}");
        }
        let _ = line.push('\n');
        let _ = l4_sys::log::write(k, log, line.as_bytes());
    }
    let lost = DROPPED.swap(0, Ordering::Relaxed);
    if lost > 0 {
        let mut w = l4_sys::log::LogWriter::new(k, log);
        let _ = writeln!(w, "rtcr: {lost} bytes of defmt log lost (buffer full)");
    }
}

/// `defmt::info!` and then [`drain`] through `$k`.
macro_rules! log {
    ($k:expr, $($arg:tt)*) => {{
        defmt::info!($($arg)*);
        crate::logger::drain($k);
    }};
}
pub(crate) use log;

//! What the rtcr children share: the child contract (capability slots, UTCB
//! layout, how threads are started), a line-at-a-time kernel log, thread
//! stacks and the panic handler. The entry stub is l4-sys's
//! `root_task_entry!`, the same rtcr uses.
//!
//! The contract is the one Fiasco gives a root task, so a child built on it
//! runs both under rtcr and as the root task itself:
//!
//! | slot | object |
//! |---|---|
//! | 1 | the child's task |
//! | 2 | factory |
//! | 3 | the first thread |
//! | 4 | pager (speaks the sigma0 protocol) |
//! | 5 | log |
//! | 6 | ICU |
//! | 7 | scheduler |
//! | 8 ..= 0xEFF | free for the child |
//! | 0x2000 .. | rtcr's |
//!
//! The first thread starts at the ELF entry with its UTCB first in the UTCB
//! area; further threads bind theirs at `first + 0x400 · k` (k = 1..15).
//!
//! The binaries (`src/bin`) are the demo child rtcr supervises, a minimal
//! child, a foreign-entry child (its own kernel-entry code, L4Re's
//! register conventions; its checks are [`foreign`]) and the kernel
//! benchmark's child (`rtcr-bench`); on a host OS they only say how to
//! build them. The pure parts of this
//! library are host-tested; the panic handler exists only for the
//! bare-metal targets.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

use core::cell::UnsafeCell;
use core::fmt::{self, Write};
use core::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use l4_sys::cap::{kind, Cap};
use l4_sys::thread::ExRegsFlags;
use l4_sys::Kernel;

pub mod foreign;

/// The capability slots of the child contract.
pub mod slots {
    use l4_sys::cap::{kind, Cap, CapIdx};

    /// The child's own task.
    pub const TASK: Cap<kind::Task> = Cap::new(CapIdx(1));
    /// The factory.
    pub const FACTORY: Cap<kind::Factory> = Cap::new(CapIdx(2));
    /// The first thread.
    pub const THREAD: Cap<kind::Thread> = Cap::new(CapIdx(3));
    /// The pager: a gate that speaks the sigma0 protocol.
    pub const PAGER: Cap<kind::Sigma0> = Cap::new(CapIdx(4));
    /// The kernel log.
    pub const LOG: Cap<kind::Log> = Cap::new(CapIdx(5));
    /// The ICU.
    pub const ICU: Cap<kind::Icu> = Cap::new(CapIdx(6));
    /// The scheduler.
    pub const SCHEDULER: Cap<kind::Scheduler> = Cap::new(CapIdx(7));
    /// The first slot free for the child's own objects.
    pub const FIRST_FREE: CapIdx = CapIdx(8);
    /// The last slot free for the child's own objects.
    pub const LAST_FREE: CapIdx = CapIdx(0xEFF);
    /// The first of rtcr's slots.
    pub const RTCR_FIRST: CapIdx = CapIdx(0x2000);
}

/// Bytes per UTCB in the UTCB area.
pub const UTCB_SIZE: u64 = 0x400;
/// Most threads a child has (the first one included).
pub const MAX_THREADS: u64 = 16;

/// Where thread `k` (0 = the first thread) binds its UTCB, or `None` beyond
/// [`MAX_THREADS`].
pub const fn utcb_of(first_utcb: u64, k: u64) -> Option<u64> {
    if k < MAX_THREADS {
        Some(first_utcb + UTCB_SIZE * k)
    } else {
        None
    }
}

/// The ex_regs flags that start a thread: EL0 on arm64, none on amd64.
pub const fn start_flags() -> ExRegsFlags {
    if cfg!(target_arch = "aarch64") {
        ExRegsFlags::ARM64_SET_EL_EL0
    } else {
        ExRegsFlags::empty()
    }
}

/// The stack pointer a thread starts with when its stack ends at `top`
/// (16-byte aligned): the function it starts in sees the stack as if it had
/// been called (amd64: `sp + 8` aligned to 16, a return-address slot below
/// `top`; arm64: `sp` itself aligned to 16).
pub const fn initial_sp(top: u64) -> u64 {
    if cfg!(target_arch = "x86_64") {
        top - 8
    } else {
        top
    }
}

/// A thread's stack: `N` bytes (a multiple of 16) in the image's .bss, so
/// that it is child memory rtcr checkpoints like any other.
#[repr(C, align(16))]
pub struct Stack<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: Rust code never reads or writes the bytes of a `Stack` (only its
// address is taken); the one thread that is given the stack uses it through
// its stack pointer, so no data race through a shared `&Stack` is possible.
unsafe impl<const N: usize> Sync for Stack<N> {}

impl<const N: usize> Stack<N> {
    /// A zeroed stack.
    pub const fn new() -> Self {
        assert!(N.is_multiple_of(16) && N > 0, "stack size must be a non-zero multiple of 16");
        Stack(UnsafeCell::new([0; N]))
    }

    /// The address just past the stack (16-byte aligned).
    pub fn top(&self) -> u64 {
        self.0.get() as u64 + N as u64
    }

    /// The stack pointer a thread starts with on this stack.
    pub fn initial_sp(&self) -> u64 {
        initial_sp(self.top())
    }
}

impl<const N: usize> Default for Stack<N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Room for one log line.
pub const LINE_MAX: usize = 200;

/// A fixed-size line buffer (no heap): text beyond [`LINE_MAX`] − 1 bytes is
/// cut, [`Line::finish`] always ends it with a newline.
pub struct Line {
    buf: [u8; LINE_MAX],
    len: usize,
}

impl Line {
    /// An empty line.
    pub const fn new() -> Self {
        Line { buf: [0; LINE_MAX], len: 0 }
    }

    /// The text so far (`"?"` if a cut split a character).
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("?")
    }

    /// The text with a newline after it.
    pub fn finish(&mut self) -> &[u8] {
        let n = self.len.min(LINE_MAX - 1);
        self.buf[n] = b'\n';
        &self.buf[..n + 1]
    }
}

impl Default for Line {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // keep the last byte for the newline of `finish`
        let n = s.len().min(LINE_MAX - 1 - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Formats `args` into one line and writes it to `log` with a single log
/// write, so that lines of different threads never interleave.
pub fn log_to<K: Kernel>(k: &mut K, log: Cap<kind::Log>, args: fmt::Arguments<'_>) {
    let mut line = Line::new();
    let _ = line.write_fmt(args);
    let _ = l4_sys::log::write(k, log, line.finish());
}

/// Writes one line (format arguments as for `format!`) to the log in slot 5:
/// `say!(&mut k, "demo: count {n}")`.
#[macro_export]
macro_rules! say {
    ($k:expr, $($arg:tt)*) => {
        $crate::log_to($k, $crate::slots::LOG, ::core::format_args!($($arg)*))
    };
}

/// The labels the demo child's gates and IRQs carry, in counter order:
/// gates 0x100, 0x200, 0x300, IRQs 0x1010, 0x1020, 0x1030.
pub const DEMO_LABELS: [u64; 7] = [0x100, 0x200, 0x300, 0x1010, 0x1020, 0x1030, 0x1040];

/// What a received label is to the demo child (after masking the two low
/// bits, which carry the sender capability's rights).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// A call through gate `DEMO_LABELS[i]` (i = 0..3): answer it.
    Gate(usize),
    /// IRQ `DEMO_LABELS[i]` (i = 3..7; 6 is the hardware line).
    Irq(usize),
    /// Anything else, with the masked label.
    Unexpected(u64),
}

impl Received {
    /// Classifies a label as the kernel delivered it.
    pub fn of(label: u64) -> Self {
        let l = label & !3;
        match DEMO_LABELS.iter().position(|&x| x == l) {
            Some(i) if i < 3 => Received::Gate(i),
            Some(i) => Received::Irq(i),
            None => Received::Unexpected(l),
        }
    }
}

/// Per-label counts of what the demo child received, and the client's
/// completed calls. Atomic, so threads share it safely; a `static` of it
/// lives in the child's .bss, which rtcr checkpoints.
pub struct DemoCounts {
    by_label: [AtomicU64; 7],
    client_calls: AtomicU64,
}

impl DemoCounts {
    /// All zero.
    pub const fn new() -> Self {
        DemoCounts { by_label: [const { AtomicU64::new(0) }; 7], client_calls: AtomicU64::new(0) }
    }

    /// Counts one delivery of `DEMO_LABELS[i]`.
    pub fn bump(&self, i: usize) {
        if let Some(c) = self.by_label.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// How often `DEMO_LABELS[i]` arrived.
    pub fn get(&self, i: usize) -> u64 {
        self.by_label.get(i).map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Counts one completed client call.
    pub fn bump_client(&self) {
        self.client_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// The client's completed calls.
    pub fn client(&self) -> u64 {
        self.client_calls.load(Ordering::Relaxed)
    }
}

impl Default for DemoCounts {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for DemoCounts {
    /// `gates a/b/c irqs d/e/f client n`, the tail of the demo's count line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "gates {}/{}/{} irqs {}/{}/{} hw {} client {}",
            self.get(0),
            self.get(1),
            self.get(2),
            self.get(3),
            self.get(4),
            self.get(5),
            self.get(6),
            self.client()
        )
    }
}

/// Stops the calling thread with an undefined-instruction exception
/// (amd64 `ud2`, arm64 `udf #0`), which the kernel delivers to the thread's
/// exception handler — rtcr for a supervised child.
#[cfg(all(target_os = "none", any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn crash() -> ! {
    // SAFETY: the instruction only raises an exception; it reads and writes
    // no memory and no register Rust relies on, and never falls through.
    unsafe {
        #[cfg(target_arch = "x86_64")]
        core::arch::asm!("ud2", options(noreturn, nomem, nostack));
        #[cfg(target_arch = "aarch64")]
        core::arch::asm!("udf #0", options(noreturn, nomem, nostack));
    }
}

/// The panic routine a binary installed (see [`set_panic_hook`]); null:
/// none yet.
static PANIC_HOOK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

/// Makes the panic handler call `hook`. Each binary installs its own as its
/// first step — [`log_panic`] for those built on l4-sys's kernel entry —
/// because the panic handler lives in this library, shared by all binaries,
/// and must not itself link l4-sys's kernel entry into a binary whose every
/// kernel entry is its own code (`rtcr-foreign`). A panic before a hook is
/// installed stops the thread with an exception ([`crash`]).
pub fn set_panic_hook(hook: fn(&core::panic::PanicInfo<'_>) -> !) {
    PANIC_HOOK.store(hook as *mut (), Ordering::Release);
}

/// The usual panic routine: logs `child: PANIC: …` through l4-sys's kernel
/// entry and stops the thread in a sleep that never ends.
#[cfg(all(target_os = "none", any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn log_panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: the panicking thread never returns to the code that holds its
    // own CurrentThread (panic = abort, the handler diverges), so no borrow
    // of the UTCB made through that one is used again; this handle is the
    // only one that touches the thread's UTCB from here on.
    let mut k = unsafe { l4_sys::arch::CurrentThread::new() };
    say!(&mut k, "child: PANIC: {info}");
    loop {
        let _ = l4_sys::ipc::sleep(&mut k, l4_sys::Timeout::NEVER);
    }
}

#[cfg(all(target_os = "none", any(target_arch = "x86_64", target_arch = "aarch64")))]
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let hook = PANIC_HOOK.load(Ordering::Acquire);
    if hook.is_null() {
        crash();
    }
    // SAFETY: only `set_panic_hook` stores into PANIC_HOOK, and it stores a
    // `fn(&PanicInfo) -> !` cast to a pointer; function and data pointers
    // have the same size and representation on both targets, so this is
    // that function pointer again.
    let hook: fn(&core::panic::PanicInfo<'_>) -> ! = unsafe { core::mem::transmute(hook) };
    hook(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    use l4_sys::fake::FakeKernel;
    use l4_sys::ipc::op;

    #[test]
    fn utcbs_of_further_threads() {
        assert_eq!(utcb_of(0xB300_0000, 0), Some(0xB300_0000));
        assert_eq!(utcb_of(0xB300_0000, 3), Some(0xB300_0C00));
        assert_eq!(utcb_of(0xB300_0000, 15), Some(0xB300_3C00));
        assert_eq!(utcb_of(0xB300_0000, 16), None);
    }

    #[test]
    fn stacks_are_aligned_and_start_like_a_call() {
        static S: Stack<4096> = Stack::new();
        let top = S.top();
        assert_eq!(top % 16, 0);
        let sp = S.initial_sp();
        if cfg!(target_arch = "x86_64") {
            assert_eq!((sp + 8) % 16, 0);
            assert_eq!(sp, top - 8);
        } else {
            assert_eq!(sp % 16, 0);
        }
    }

    #[test]
    fn labels_are_classified_with_the_rights_bits_masked() {
        assert_eq!(Received::of(0x100), Received::Gate(0));
        assert_eq!(Received::of(0x202), Received::Gate(1));
        assert_eq!(Received::of(0x303), Received::Gate(2));
        assert_eq!(Received::of(0x1010), Received::Irq(3));
        assert_eq!(Received::of(0x1021), Received::Irq(4));
        assert_eq!(Received::of(0x1030), Received::Irq(5));
        assert_eq!(Received::of(0x400), Received::Unexpected(0x400));
        assert_eq!(Received::of(0x1041), Received::Irq(6));
        assert_eq!(Received::of(0x1051), Received::Unexpected(0x1050));
    }

    #[test]
    fn counts_print_as_the_count_line_tail() {
        let c = DemoCounts::new();
        for (i, n) in [1, 2, 3, 4, 5, 6, 7].into_iter().enumerate() {
            for _ in 0..n {
                c.bump(i);
            }
        }
        c.bump(7); // out of range: ignored
        c.bump_client();
        c.bump_client();
        assert_eq!(std::format!("{c}"), "gates 1/2/3 irqs 4/5/6 hw 7 client 2");
    }

    #[test]
    fn a_line_is_one_log_write_ending_in_a_newline() {
        let mut k = FakeKernel::new();
        let n = 64;
        say!(&mut k, "demo: count {n} {}", DemoCounts::new());
        assert_eq!(k.log.len(), 1);
        let e = k.last();
        assert_eq!(e.inv.dest, 0x5000 | op::SEND);
        let len = e.words()[1] as usize;
        let bytes: std::vec::Vec<u8> = e.words()[2..].iter().flat_map(|w| w.to_le_bytes()).take(len).collect();
        assert_eq!(bytes, b"demo: count 64 gates 0/0/0 irqs 0/0/0 hw 0 client 0\n");
    }

    #[test]
    fn long_lines_are_cut_but_keep_their_newline() {
        let mut line = Line::new();
        for _ in 0..50 {
            let _ = line.write_str("abcdefgh");
        }
        let out = line.finish();
        assert_eq!(out.len(), LINE_MAX);
        assert_eq!(out[LINE_MAX - 1], b'\n');
        assert!(out[..LINE_MAX - 1].iter().all(|b| b.is_ascii_lowercase()));
    }

    #[test]
    fn threads_start_at_el0_on_arm64_only() {
        if cfg!(target_arch = "aarch64") {
            assert_eq!(start_flags(), ExRegsFlags::ARM64_SET_EL_EL0);
        } else {
            assert_eq!(start_flags(), ExRegsFlags::empty());
        }
    }
}

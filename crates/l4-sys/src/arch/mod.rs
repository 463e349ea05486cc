//! The real kernel behind the seam: one kernel-entry site per architecture,
//! the read of the own UTCB pointer, and the read of the free-running
//! counter the kernel entry stamps (so rtcr can compare against the stamp).
//! Nothing else in the crate is asm.
//!
//! Register assignment (fact sheet §1.1; l4sys `ARCH-amd64/arch/ipc.h`,
//! `ARCH-arm64/arch/ipc.h`; kernel `entry_frame-amd64.cpp`,
//! `arm/64/entry_frame-arm.cpp`):
//!
//! | | amd64 | arm64 |
//! |---|---|---|
//! | instruction | `syscall` | `svc #0` |
//! | tag in/out | rax | x0 |
//! | label in/out | rsi | x1 |
//! | destination | rdx | x2 |
//! | timeouts | r8 | x3 |
//! | own UTCB | `gs:[0]` | TPIDRRO_EL0 |
//!
//! Only compiled for the bare-metal targets (`target_os = "none"`): on a host
//! OS the same instruction would be that OS's system call. The program entry
//! stub ([`crate::root_task_entry`]) lives here too.

#[cfg(all(target_os = "none", target_arch = "x86_64"))]
mod x86_64;
#[cfg(all(target_os = "none", target_arch = "x86_64"))]
use x86_64 as imp;

#[cfg(all(target_os = "none", target_arch = "aarch64"))]
mod aarch64;
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
use aarch64 as imp;
/// The stamp counter's frequency (arm64 only: on amd64 the TSC frequency
/// is the KIP's `frequency_cpu`).
#[cfg(all(target_os = "none", target_arch = "aarch64"))]
pub use aarch64::stamp_hz;

#[cfg(all(target_os = "none", any(target_arch = "x86_64", target_arch = "aarch64")))]
pub use real::CurrentThread;

/// The free-running counter the restartable kernel entry stamps into
/// `Arch::restart_regs().stamp` (TSC on amd64, CNTVCT_EL0 on arm64), now.
#[cfg(all(target_os = "none", any(target_arch = "x86_64", target_arch = "aarch64")))]
pub fn stamp_now() -> u64 {
    imp::stamp_now()
}

#[cfg(all(target_os = "none", any(target_arch = "x86_64", target_arch = "aarch64")))]
mod real {
    use super::imp;
    use crate::kernel::{Invocation, Kernel, Outcome};
    use crate::utcb::Utcb;
    use core::marker::PhantomData;
    use core::ptr::NonNull;

    /// The running thread, entering the real kernel.
    ///
    /// Not `Send`: a UTCB belongs to one thread. Exactly one `CurrentThread`
    /// may exist per thread (see [`CurrentThread::new`]).
    pub struct CurrentThread {
        utcb: NonNull<Utcb>,
        _not_send: PhantomData<*mut ()>,
    }

    impl CurrentThread {
        /// The handle of the calling thread.
        ///
        /// # Safety
        /// The caller must run on a Fiasco thread bound to a UTCB (every
        /// thread the kernel or a parent started has one) and must not create
        /// a second `CurrentThread` on the same thread while this one lives:
        /// both would hand out `&mut Utcb` to the same memory.
        pub unsafe fn new() -> Self {
            let p = imp::utcb_ptr();
            CurrentThread { utcb: NonNull::new(p).expect("thread has no UTCB"), _not_send: PhantomData }
        }

        /// The UTCB's address.
        pub fn utcb_addr(&self) -> u64 {
            self.utcb.as_ptr() as u64
        }
    }

    impl Kernel for CurrentThread {
        fn utcb(&mut self) -> &mut Utcb {
            // SAFETY: the pointer is this thread's UTCB (read from the kernel-
            // maintained register in `new`), valid for the thread's lifetime;
            // `&mut self` makes this the only live reference, and the kernel
            // writes it only during this thread's own kernel entries, which
            // need `&mut self` too and so cannot overlap the borrow.
            unsafe { self.utcb.as_mut() }
        }

        fn invoke(&mut self, inv: Invocation) -> Outcome {
            // SAFETY: `imp::syscall` enters the kernel with the architecture's
            // register convention; the kernel reads and writes only this
            // thread's UTCB, which no Rust reference aliases now (we hold
            // `&mut self`).
            let (tag, label) = unsafe { imp::syscall(inv.dest, inv.tag.0, inv.label, inv.timeout.raw()) };
            Outcome { tag: crate::MsgTag(tag), label }
        }
    }
}

/// Defines the ELF entry `_start` of a program started the way the kernel
/// starts a root task (every register zero, the stack pointer included;
/// fact sheet §3.2; rtcr starts its children the same way or with its own
/// stack): loads the stack the linker script reserves (`__stack_top`),
/// clears the frame pointer and calls `$main`, an `extern "C" fn() -> !`.
/// Use once per binary, bare-metal targets only. The one entry stub of rtcr
/// and of the children: one small asm site per architecture.
#[macro_export]
macro_rules! root_task_entry {
    ($main:path) => {
        #[cfg(target_arch = "x86_64")]
        ::core::arch::global_asm!(
            ".section .text.entry, \"ax\"",
            ".global _start",
            "_start:",
            "    lea rsp, [rip + __stack_top]",
            "    xor ebp, ebp",
            "    and rsp, -16",
            "    call {main}",
            "2:  ud2",
            "    jmp 2b",
            main = sym $main,
        );

        #[cfg(target_arch = "aarch64")]
        ::core::arch::global_asm!(
            ".section .text.entry, \"ax\"",
            ".global _start",
            "_start:",
            "    adrp x9, __stack_top",
            "    add  x9, x9, :lo12:__stack_top",
            "    mov  sp, x9",
            "    mov  x29, xzr",
            "    mov  x30, xzr",
            "    bl   {main}",
            "2:  udf #0",
            "    b    2b",
            main = sym $main,
        );
    };
}

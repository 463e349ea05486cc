//! arm64: `svc #0` and TPIDRRO_EL0.

use crate::utcb::Utcb;

/// Enters the kernel. Returns (tag, label).
///
/// # Safety
/// The calling thread's UTCB must not be borrowed: the kernel reads and
/// writes it (hence no `nomem`/`readonly`).
#[inline(always)]
pub(super) unsafe fn syscall(dest: u64, tag: u64, label: u64, timeout: u64) -> (u64, u64) {
    let tag_out: u64;
    let label_out: u64;
    // SAFETY: the caller upholds the UTCB rule above. The kernel restores
    // x4..x30, sp and the FP/SIMD state and writes only x0/x1; x2/x3 are
    // marked clobbered as the fact sheet advises (§1.1).
    unsafe {
        core::arch::asm!(
            "svc #0",
            inout("x0") tag => tag_out,
            inout("x1") label => label_out,
            inout("x2") dest => _,
            inout("x3") timeout => _,
            options(nostack),
        );
    }
    (tag_out, label_out)
}

/// The UTCB pointer, from TPIDRRO_EL0.
#[inline(always)]
pub(super) fn utcb_ptr() -> *mut Utcb {
    let p: u64;
    // SAFETY: reading TPIDRRO_EL0 is allowed at EL0 and has no side effects;
    // the kernel sets it to the thread's UTCB address.
    unsafe {
        core::arch::asm!("mrs {}, tpidrro_el0", out(reg) p, options(nomem, nostack, preserves_flags));
    }
    p as *mut Utcb
}

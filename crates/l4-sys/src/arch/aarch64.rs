//! arm64: `svc #0` and TPIDRRO_EL0.

use crate::utcb::Utcb;

/// Enters the kernel. Returns (tag, label).
///
/// The entry is restartable: the four inputs arrive in x4..x7, which the
/// kernel restores from the entry frame (fact sheet §1.1), and are moved
/// into x0..x3 by the last four instructions before `svc #0`. When rtcr
/// cancels a thread blocked in this call (for a checkpoint), it moves the
/// PC back by [`crate::exc::Arch::restart_len`] to the first move, so on
/// resume the call is issued again with its original inputs.
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
    // marked clobbered as the fact sheet advises (§1.1). x4..x7 are only
    // read.
    unsafe {
        core::arch::asm!(
            // the restartable sequence: 4 moves + svc, 5 x 4 bytes =
            // RESTART_LEN_ARM64 (checked in tests/bare_metal_elf.rs)
            "mov x0, x4",
            "mov x1, x5",
            "mov x2, x6",
            "mov x3, x7",
            "svc #0",
            in("x4") tag,
            in("x5") label,
            in("x6") dest,
            in("x7") timeout,
            out("x0") tag_out,
            out("x1") label_out,
            out("x2") _,
            out("x3") _,
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

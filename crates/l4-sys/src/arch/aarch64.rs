//! arm64: `svc #0` and TPIDRRO_EL0.

use crate::utcb::Utcb;

/// Enters the kernel. Returns (tag, label).
///
/// The entry is restartable: the four inputs arrive in x4..x7, which the
/// kernel restores from the entry frame (fact sheet §1.1), and are moved
/// into x0..x3 by the last four instructions before `svc #0`. When rtcr
/// cancels a thread blocked in this call (for a checkpoint), it moves the
/// PC back by [`crate::exc::Arch::restart_len`] to the first move, so on
/// resume the call is issued again with its original inputs. Before the
/// moves the entry stamps x8 with the virtual counter (CNTVCT_EL0), so rtcr
/// can tell how much of a relative timeout had run when it cut the call and
/// re-issue it with only the rest (it may rewrite the input registers for
/// that, hence they are declared clobbered).
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
    // marked clobbered as the fact sheet advises (§1.1). CNTVCT_EL0 is
    // readable at EL0: Fiasco sets CNTKCTL_EL1.EL0VCTEN in every timer
    // mode (generic_timer.cpp). x4..x8 are declared clobbered: rtcr may
    // rewrite them in a thread it stopped inside this sequence.
    unsafe {
        core::arch::asm!(
            // the entry stamp (not re-run on a restart)
            "mrs x8, cntvct_el0",
            // the restartable sequence: 4 moves + svc, 5 x 4 bytes =
            // RESTART_LEN_ARM64 (checked in tests/bare_metal_elf.rs)
            "mov x0, x4",
            "mov x1, x5",
            "mov x2, x6",
            "mov x3, x7",
            "svc #0",
            inout("x4") tag => _,
            inout("x5") label => _,
            inout("x6") dest => _,
            inout("x7") timeout => _,
            out("x8") _,
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

/// The virtual counter (CNTVCT_EL0), as the kernel entry stamps it.
#[inline(always)]
pub(super) fn stamp_now() -> u64 {
    let v: u64;
    // SAFETY: reading CNTVCT_EL0 has no side effects and is allowed at EL0
    // (Fiasco sets CNTKCTL_EL1.EL0VCTEN).
    unsafe {
        core::arch::asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack, preserves_flags));
    }
    v
}

/// The counter's frequency in Hz (CNTFRQ_EL0).
#[inline(always)]
pub fn stamp_hz() -> u64 {
    let v: u64;
    // SAFETY: reading CNTFRQ_EL0 has no side effects and is allowed at EL0.
    unsafe {
        core::arch::asm!("mrs {}, cntfrq_el0", out(reg) v, options(nomem, nostack, preserves_flags));
    }
    v
}

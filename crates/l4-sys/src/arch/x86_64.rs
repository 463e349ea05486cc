//! amd64: `syscall` and `gs:[0]`.

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
    // SAFETY: the caller upholds the UTCB rule above. The kernel does not
    // touch the user stack; it clobbers rcx/r11 (sysret), r15 (kernel
    // isolation exit path), and we treat rdx, rdi and r8 as clobbered too,
    // as the C binding does (fact sheet §1.1, verify-list item 12).
    unsafe {
        core::arch::asm!(
            "syscall",
            inout("rax") tag => tag_out,
            inout("rsi") label => label_out,
            inout("rdx") dest => _,
            inout("r8") timeout => _,
            out("rdi") _,
            out("rcx") _,
            out("r11") _,
            out("r15") _,
            options(nostack),
        );
    }
    (tag_out, label_out)
}

/// The UTCB pointer: the kernel keeps the UTCB's own address at gs:0.
#[inline(always)]
pub(super) fn utcb_ptr() -> *mut Utcb {
    let p: u64;
    // SAFETY: reading gs:[0] is a plain load through the GS base the kernel
    // set up for this thread (UTCB + 0x1F8, which holds the UTCB address).
    unsafe {
        core::arch::asm!("mov {}, gs:[0]", out(reg) p, options(nostack, readonly, preserves_flags));
    }
    p as *mut Utcb
}

//! amd64: `syscall` and `gs:[0]`.

use crate::utcb::Utcb;

/// Enters the kernel. Returns (tag, label).
///
/// The entry is restartable: the four inputs arrive in registers the
/// kernel preserves (r9, r10, r12, r13; fact sheet §1.1) and are moved
/// into the ABI registers by the last four instructions before `syscall`.
/// When rtcr cancels a thread blocked in this call (ex_regs CANCEL, for a
/// checkpoint), it moves the IP back by [`crate::exc::Arch::restart_len`]
/// to the first move, so on resume the call is issued again with its
/// original inputs even though rax/rsi/rdx/r8 then hold its error result.
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
    // as the C binding does (fact sheet §1.1, verify-list item 12). The
    // input registers r9/r10/r12/r13 are only read.
    unsafe {
        core::arch::asm!(
            // the restartable sequence: 4 x 3 bytes of moves + 2 bytes of
            // syscall = RESTART_LEN_AMD64 (checked in tests/bare_metal_elf.rs)
            "mov rax, r9",
            "mov rsi, r10",
            "mov rdx, r12",
            "mov r8, r13",
            "syscall",
            in("r9") tag,
            in("r10") label,
            in("r12") dest,
            in("r13") timeout,
            out("rax") tag_out,
            out("rsi") label_out,
            out("rdx") _,
            out("r8") _,
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

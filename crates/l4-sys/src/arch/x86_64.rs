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
/// Before the moves the entry stamps r14 with the time-stamp counter, so
/// rtcr can tell how much of a relative timeout had run when it cut the
/// call, and re-issue it with only the rest (it may rewrite the input
/// registers for that, hence they are declared clobbered).
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
    // as the C binding does (fact sheet §1.1, verify-list item 12). rdtsc
    // is allowed in user mode (Fiasco leaves CR4.TSD clear: the probe runs
    // it). r9/r10/r12/r13/r14 are declared clobbered: rtcr may rewrite them
    // in a thread it stopped inside this sequence.
    unsafe {
        core::arch::asm!(
            // the entry stamp (not re-run on a restart)
            "rdtsc",
            "shl rdx, 32",
            "or rax, rdx",
            "mov r14, rax",
            // the restartable sequence: 4 x 3 bytes of moves + 2 bytes of
            // syscall = RESTART_LEN_AMD64 (checked in tests/bare_metal_elf.rs)
            "mov rax, r9",
            "mov rsi, r10",
            "mov rdx, r12",
            "mov r8, r13",
            "syscall",
            inout("r9") tag => _,
            inout("r10") label => _,
            inout("r12") dest => _,
            inout("r13") timeout => _,
            out("r14") _,
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

/// The time-stamp counter (`rdtsc`), as the kernel entry stamps it.
#[inline(always)]
pub(super) fn stamp_now() -> u64 {
    let (lo, hi): (u64, u64);
    // SAFETY: rdtsc reads the TSC into edx:eax and has no other effect;
    // Fiasco leaves CR4.TSD clear, so it is allowed in user mode (the
    // kernel entry executes it on every call).
    unsafe {
        core::arch::asm!("rdtsc", out("rax") lo, out("rdx") hi, options(nomem, nostack, preserves_flags));
    }
    (hi << 32) | (lo & 0xffff_ffff)
}

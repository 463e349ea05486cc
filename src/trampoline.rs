//! The trampoline: the code rtcr runs inside a stopped child thread to save
//! or load that thread's UTCB, which no other task can map (verify-list
//! item 4). rtcr maps it into the child at a reserved address and points
//! the stopped thread at it through the exception reply, CRIU-parasite
//! style; on the model the same contract is a program (rtcr-sim).
//!
//! Contract (rtcr-core `checkpoint::trampoline`): on entry rdi / x0 holds
//! the operation (1 = copy the UTCB's 1024 bytes to the exchange page, 2 =
//! copy the exchange page into the UTCB), rsi / x1 the exchange page; the
//! UTCB is found the way l4-sys finds it (gs:[0] / TPIDRRO_EL0). It ends in
//! a breakpoint (int3 / brk #0), which stops the thread again with an
//! exception to rtcr; an unknown operation copies nothing and ends the
//! same way. It uses only integer registers and needs no stack: rtcr
//! restores the thread's whole register set afterwards. Position
//! independent, so the bytes can be copied anywhere.

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".section .text.rtcr_trampoline,\"ax\"",
    ".global rtcr_trampoline_start",
    ".global rtcr_trampoline_end",
    "rtcr_trampoline_start:",
    "cld",
    "mov rax, gs:[0]",
    "mov ecx, 128",
    "cmp rdi, 1",
    "jne 2f",
    // save: UTCB (rax) -> exchange page (rsi)
    "mov rdi, rsi",
    "mov rsi, rax",
    "rep movsq",
    "int3",
    "2:",
    "cmp rdi, 2",
    "jne 3f",
    // load: exchange page (rsi) -> UTCB (rax)
    "mov rdi, rax",
    "rep movsq",
    "int3",
    "3:",
    "int3",
    "rtcr_trampoline_end:",
    ".previous",
);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
    ".section .text.rtcr_trampoline,\"ax\"",
    ".global rtcr_trampoline_start",
    ".global rtcr_trampoline_end",
    ".balign 4",
    "rtcr_trampoline_start:",
    "mrs x2, tpidrro_el0",
    "mov x3, #128",
    "cmp x0, #1",
    "b.ne 2f",
    // save: UTCB (x2) -> exchange page (x1)
    "1:",
    "ldr x4, [x2], #8",
    "str x4, [x1], #8",
    "subs x3, x3, #1",
    "b.ne 1b",
    "brk #0",
    "2:",
    "cmp x0, #2",
    "b.ne 4f",
    // load: exchange page (x1) -> UTCB (x2)
    "3:",
    "ldr x4, [x1], #8",
    "str x4, [x2], #8",
    "subs x3, x3, #1",
    "b.ne 3b",
    "brk #0",
    "4:",
    "brk #0",
    "rtcr_trampoline_end:",
    ".previous",
);

extern "C" {
    static rtcr_trampoline_start: u8;
    static rtcr_trampoline_end: u8;
}

/// The trampoline's entry address in rtcr's own image and its length.
pub fn code() -> (u64, u64) {
    // only the addresses of the two symbols are taken (no read); both are
    // defined by the global_asm above, in this image
    let (start, end) =
        (core::ptr::addr_of!(rtcr_trampoline_start) as u64, core::ptr::addr_of!(rtcr_trampoline_end) as u64);
    (start, end - start)
}

/// The trampoline's machine code, to be copied into a child.
pub fn bytes() -> &'static [u8] {
    let (start, len) = code();
    // SAFETY: [start, start + len) is the trampoline's code between the two
    // symbols of the global_asm above, in this image's text segment, which
    // is mapped readable for rtcr's whole life and never written.
    unsafe { core::slice::from_raw_parts(start as *const u8, len as usize) }
}

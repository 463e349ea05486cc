//! Entry stub: the kernel starts the root task with every register zero,
//! the stack pointer included (fact sheet §3.2), so the first instructions
//! load the stack the linker script reserves and call into Rust. One small
//! asm site per architecture.

#[cfg(target_arch = "x86_64")]
core::arch::global_asm!(
    ".section .text.entry, \"ax\"",
    ".global _start",
    "_start:",
    "    lea rsp, [rip + __stack_top]",
    "    xor ebp, ebp",
    "    and rsp, -16",
    "    call {main}",
    "2:  ud2",
    "    jmp 2b",
    main = sym crate::stub::rtcr_main,
);

#[cfg(target_arch = "aarch64")]
core::arch::global_asm!(
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
    main = sym crate::stub::rtcr_main,
);

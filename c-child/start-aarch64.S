/* rtcr-c-child's entry, arm64: set up the main stack (the end of .bss,
 * child.ld) and call the C main, which never returns.
 *
 * Also the kernel entry L4Re's l4sys headers call on arm64: l4_ipc() in
 * <l4/sys/arch/ipc.h> calls the external function __l4_sys_syscall(tag,
 * label, dest | flags, timeout) and takes the tag and label back in x0/x1.
 * L4Re's libl4sys provides it; this program links no L4Re library, so it is
 * here: the arguments are already in the registers the kernel reads. */
        .section .text.entry, "ax", %progbits
        .globl  _start
        .type   _start, %function
_start:
        adrp    x0, __stack_top
        add     x0, x0, :lo12:__stack_top
        mov     sp, x0
        mov     x29, #0
        mov     x30, #0
        bl      c_child_main
1:      b       1b
        .size   _start, . - _start

        .section .text.__l4_sys_syscall, "ax", %progbits
        .balign 4
        .globl  __l4_sys_syscall
        .type   __l4_sys_syscall, %function
__l4_sys_syscall:
        svc     #0
        ret
        .size   __l4_sys_syscall, . - __l4_sys_syscall
        .section .note.GNU-stack, "", %progbits

/* rtcr-c-child's entry, amd64: the kernel (and rtcr) may start the first
 * thread with every register zero, so set up the main stack (the end of .bss,
 * child.ld) and call the C main, which never returns. */
        .section .text.entry, "ax", @progbits
        .globl  _start
        .type   _start, @function
_start:
        lea     __stack_top(%rip), %rsp
        xor     %ebp, %ebp
        call    c_child_main
1:      ud2
        jmp     1b
        .size   _start, . - _start
        .section .note.GNU-stack, "", @progbits

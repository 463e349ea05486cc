//! Entry stub: the kernel starts the root task with every register zero,
//! the stack pointer included (fact sheet §3.2), so the first instructions
//! load the stack the linker script reserves and call into Rust. The asm is
//! l4-sys's `root_task_entry!`, shared with the children.

l4_sys::root_task_entry!(crate::boot::rtcr_main);

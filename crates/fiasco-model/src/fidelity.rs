//! What the model implements, where the kernel defines it, what was
//! checked on a real kernel, and what is left out on purpose.
//!
//! "Checked" means: seen on Fiasco (l4re-core/fiasco r-2026-W26, QEMU
//! x86_64 and arm64) by rtcr's `probe` mode (`src/probe.rs`,
//! `tests/qemu.rs`) or by the JDB dump; everything else follows the
//! sources named and the fact sheet (`shared/FIASCO-ABI.md`).
//!
//! # Implemented
//!
//! | behaviour | kernel source | checked on the kernel |
//! |---|---|---|
//! | one system call; dest = selector \| SEND/RECV/OPEN_WAIT/REPLY; self = invalid cap | `syscalls.cpp`, `abi/l4_types.cpp` | yes (every probe) |
//! | message tag, words/items, tag error flag + TCR error codes | `abi/l4_types.cpp`, `abi/l4_error.cpp` | yes |
//! | empty slot → ENOT_EXISTENT | `syscalls.cpp` | — |
//! | timeouts: relative m·2^e µs, zero, never, absolute via BR | `abi/l4_types.cpp` | 10 ms sleep took 10 ms (x86) |
//! | send/call/receive/open wait/reply/reply-and-wait, implicit reply cap | `thread-ipc.cpp`, `receiver.cpp`, `sender.cpp` | yes |
//! | gate label = gate label \| W \| S of the sender's cap | `ipc_gate.cpp` | yes: exception via gate 0x100 arrived as 0x103 |
//! | send to an unbound gate blocks until bound | `ipc_gate.cpp` | — |
//! | labels sent directly to a thread are the sender's | `thread_object.cpp` | — |
//! | typed items: single-cap and generic buffers, BDR offsets, hot-spot rule, cut message (SEMSGCUT/REMSGCUT) | `l4_buf_iter.cpp`, `abi/l4_msg_item.cpp`, `map_util.cpp` | — |
//! | S right of sent caps masked by the addressing cap's S | `thread-ipc.cpp` (`transfer_msg_items`) | — |
//! | LOCAL_ID buffers: same task → the fpage; a gate bound to the receiver's task → label \| W/S; else a mapping | `thread-ipc.cpp`, `abi/l4_msg_item.cpp` | — |
//! | gate server attribute (0x20) decides client/server cap | `ipc_gate.cpp`, `map_util.cpp` | — |
//! | map onto an occupied slot/page replaces it unless it is derived from the sender (then rights are upgraded) | `map_util.cpp`, `map_util-objs.cpp` | — |
//! | unmap with rights, child-only vs ALL_SPACES, DELETE_OBJ; R removes the entry | `map_util.cpp` | — |
//! | object deleted with its last capability; waiting partners get ENOT_EXISTENT | `kobject.cpp`, `thread-ipc.cpp` | — |
//! | cap_valid, cap_equal (same object, same W/S, same interface) | `task.cpp` | cap_valid on slots 1–11 (x86, arm) |
//! | factory: task (UTCB area), thread, gate (bound + label, or unbound), IRQ, semaphore, factory (quota); BR0 single-cap buffer; REMSGCUT without | `factory.cpp` | creating gate/thread/task from the root (probes) |
//! | factory create replaces what is in the target slot | `map_util-objs.cpp` (`map_obj_initially`) | — |
//! | task map (dst = invoked, src = item), add_ku_mem | `task.cpp` | map of another task's UTCB "succeeds" and maps nothing (model: ku_mem is not mappable, nothing maps) |
//! | thread control: pager, exception handler (slots in the thread's own task, looked up at fault time), bind (UTCB in ku_mem, once) | `thread_object.cpp`, `context.cpp` | yes |
//! | ex_regs: IP/SP (~0 keeps), CANCEL, TRIGGER_EXCEPTION, resurrects a dead thread, no-op on a thread in an exception IPC without CANCEL | `thread_object.cpp` | trigger on a never-run thread: exception with ip 0, trapno 0xFF / EC 0x3E |
//! | exception message: 26 (amd64) / 40 (arm64) words, TRANSFER_FPU flag; full-size reply sets registers (sanitised), shorter resumes unchanged | `thread-ipc.cpp`, `ia32/64/thread-ia32-64.cpp`, `arm/64/thread-arm-64.cpp` | yes |
//! | resuming a thread in an exception by a plain send from the handler thread | same | yes (probe 1, both architectures) |
//! | page fault message: label −2, MR0 = addr \| flags (bit 0 sense differs per arch), MR1 = IP; reply map item at the hot spot; negative reply → exception (trap 14 / EC 0x24) | `thread-ipc.cpp`, `ia32/paging-ia32.cpp`, `arm/paging-arm.cpp` | fault at an unmapped address → trap 14 / EC 0x24 at the address |
//! | no pager → thread killed; no exception handler → thread blocks on itself | `thread-ipc.cpp` | — |
//! | IRQ: rcv-endpoint bind (any label), detach (was-pending result), trigger, one pending delivery, delivery = tag 0 + bind label; HW lines via ICU bind, masked after delivery until unmask | `irq.cpp`, `icu_helper.cpp` | — |
//! | semaphore: up = trigger, down blocks up to the receive timeout | `semaphore.cpp` | — |
//! | TRANSFER_FPU: an exception carries the thread's FPU state to a handler whose BDR has INHERIT_FPU (through a capability with S); a reply or resuming send with TRANSFER_FPU gives the handler's back | `thread.cpp` (`transfer_fpu`) | yes: probe 5 on both kernels — an exception's FPU state reaches a handler with INHERIT_FPU (tag flag 0x1000), and a resuming plain send with TRANSFER_FPU gives the handler's back |
//! | scheduler: run_thread (prio 1..255, 0 = EINVAL, quantum), info; a thread runs only after run_thread | `scheduler.cpp` | raising rtcr's own priority |
//! | fixed-priority scheduling, round robin within a priority | `sched_context-fixed_prio.cpp` | — |
//! | several CPUs ([`crate::Config::cpus`], all online): run_thread puts the thread on the CPU `sys_run` chooses (`l4_sys::scheduler::placement`: home CPU if online and in the set, else the caller's if in the set, else the set's first; no affinity kept); a set naming no CPU there is parks the thread on none (it never runs); info answers the present CPUs of the set's window, one bit per granule, and the maximum; idle_time the time the set's first online CPU had no ready thread (EINVAL for none) | `scheduler.cpp` (`sys_run`, `sys_info`, `sys_idle_time`), `l4_types.cpp` (`L4_cpu_set`) | — (the QEMU `-smp` runs of issue 13 check placement) |
//! | each CPU runs its own highest-priority ready thread (round robin and time slice per CPU); a thread blocked on one CPU is woken by IPC, IRQs and ex_regs from any other | `sched_context-fixed_prio.cpp`, `thread-ipc.cpp` (remote wake-up) | — |
//! | a host thread (rtcr) runs on a CPU too (CPU 0 until it moves itself): the other CPUs go on while its code runs (a seeded number of steps, at most [`crate::Config::smp_burst`], before each of its kernel calls), and one that moves itself to a CPU at a low priority gets that CPU back only when no program thread of higher priority is ready there | `scheduler.cpp`, `context.cpp` (migration) | — |
//! | log write (≤ 488 bytes, longer ignored), per task | `vlog.cpp` | yes (every line of the stub) |
//! | debugger: name objects (16 bytes), global id | `jdb_object.cpp`, `jdb/jdb_kobject_names.cpp` | yes: JDB lists the task as `{rtcr}` |
//! | sigma0: KIP, any RAM, given RAM, I/O memory, root page faults 1:1 | l4re-core `sigma0/server/src/memmap.cc` | KIP and any-page requests (probes) |
//! | root task: caps 1–7 and 10, UTCB at 0x7f_ff00_0000 / 0xfff_ffff_0000 | `std_workload.cpp` | yes |
//! | a call cancelled by ex_regs CANCEL returns tag 0x8000 with TCR SECANCELED/RECANCELED and leaves the other registers alone, so l4-sys's restartable entry (inputs in r9/r10/r12/r13 or x4–x7, stamp in r14 / x8) can be re-run from its first move; the model places that entry at state + 8 and, on a restart, takes the call's inputs from those registers; the stamp counter runs at 25 MHz off the clock | `thread.cpp` (`ex_regs`), `entry-amd64.S` / `arm/64/ivt.S` | yes: `restart` probe on both kernels (TCR 0x7, timeout kept in r13 / x7, re-issued sleep waits what was left by the stamp) |
//! | ex_regs TRIGGER_EXCEPTION without CANCEL on a thread blocked in IPC: the exception comes when the call returns, with the call's results in the registers (a thread in user code stops at once) | `thread_object.cpp` (`sys_ex_regs`), `thread.cpp` | — (the QEMU runs of rtcr-foreign use it at every checkpoint) |
//! | bare kernel entries (`Cpu::bare_entry`): inputs in the ABI registers only (rax/rdx/rsi/r8, x0–x3), the restart registers untouched, as L4Re's own entry code does; dest\|flags and the timeout stay in rdx/r8 (x2/x3) through a cancel | `entry-native.S`, `arm/64/ivt.S` | dest and timeout kept after a cancel: yes (issue 10's measurement) |
//! | a receive phase ended by a cancel: the callee's implicit reply capability is reset (`reset_partner_reply_cap`); a reply nobody waits for fails with ENOT_EXISTENT, receive phase and all (`Obj_cap::deref` finds no caller, `sys_ipc_wrapper`) | `thread-ipc.cpp`, `thread_object.cpp`, `syscalls.cpp` | — |
//! | unmap reports referenced/dirty (x86 only) and does not clear them | `map_util.cpp`, `ia32/paging-ia32.cpp` | yes: a fresh page `--`, after a write `RD` and stays so (probe 3); arm reports nothing |
//!
//! # Left out (deliberately)
//!
//! * The kernel's own use of a thread's BDR and first two buffer registers
//!   while the thread sits in an exception (seen on both kernels by the
//!   `trampoline` probe: the thread's values come back when the exception
//!   is answered). rtcr never reads a UTCB while its thread is in an
//!   exception; it lets the thread run the trampoline first.
//! * The tag register after a cancel: the kernel returns the input tag
//!   with the error flag for a receive phase ended by a cancel
//!   (`commit_error` keeps the tag) and 0x8000 for a failed send phase; the
//!   model returns 0x8000 for both. rtcr reads neither (it issues only
//!   receives again, whose tag does not matter).
//! * Time-slice donation and the direct switch of IPC (`thread-ipc.cpp`,
//!   `do_direct_switch`): on the kernel a send without the SCHEDULE tag
//!   flag switches straight to the receiver whenever the sender runs on a
//!   donated time slice, even a lower-priority receiver; the model always
//!   lets the scheduler choose. Found on the kernel (lost zero-timeout IRQ
//!   triggers after each checkpoint); rtcr sends everything to a child with
//!   SCHEDULE (rtcr-core `NO_DONATION`), which the model's behaviour matches.
//! * True parallelism: the CPUs take turns one whole step at a time, in an
//!   order drawn from [`crate::Config::seed`]; a step stays atomic across
//!   CPUs (no two threads' loads and stores interleave inside a step, so
//!   no data race, memory ordering or torn word is modelled). The clock
//!   advances per step taken on any CPU, so a CPU's throughput falls as
//!   more CPUs run (a model of the interleaving, not of speed).
//! * Cross-CPU requests and their timing: IPIs, the kernel's DRQs (a
//!   remote ex_regs, IPC wake-up or IRQ delivery acts at once in the
//!   model; on the kernel it reaches the other CPU a little later), TLB
//!   shootdown (an unmap takes effect on every CPU at once), a migrating
//!   thread's time in transit, and load balancing (the kernel has none).
//! * CPU hotplug and offline CPUs: every CPU of the configuration is
//!   online from boot.
//! * Preemption inside a step: a thread leaves the CPU only between steps
//!   (a step is one atomic stretch of a program's computation).
//! * A real FPU: a model thread has 32 words of "FPU registers"; they move
//!   with TRANSFER_FPU as the kernel moves the real state (below).
//! * Explicit reply capabilities (the kernel build has them, the KIP does
//!   not advertise them; rtcr does not need them).
//! * Grants of memory out of superpages, superpages at all (pages are 4 KiB).
//!   On the kernel (`map_util.cpp`, checked by issue 12's bench, which
//!   times it): an fpage of 2 MiB or more between two aligned addresses
//!   of a sender that holds superpages (sigma0 answers order-21 requests
//!   with order-21 fpages) becomes a 2 MiB mapping; an unmap with
//!   ALL_SPACES of part of it takes the rights from the whole 2 MiB; a
//!   4 KiB map into it first unmaps the whole superpage. rtcr's restore
//!   maps aligned runs of its 4 MiB frame blocks as large fpages, so a
//!   restored child can hold superpages the model gives as 4 KiB entries:
//!   the same contents and rights, other fault counts afterwards.
//! * The cost of an unmap per page: on arm64 the kernel invalidates the
//!   TLB entry of each page it changes by the space's ASID, and a task that
//!   never ran has none (no invalidation); the model has no TLB.
//! * I/O ports, vCPUs, VMs, DMA spaces, IOMMU, SMC, the debugger's object
//!   dump (op 0x110; it trips an assertion on the real kernel build).
//! * Kernel memory quotas other than the factory's (object sizes are
//!   nominal: task 8 KiB, thread 4 KiB, others 64 bytes).
//! * Memory that a program reaches by load/store is its task's page table
//!   only; ku_mem (UTCBs) is reached through the `Kernel::utcb` seam.
//! * modify_senders rewrites labels of senders that address the thread
//!   directly, not of senders queued through a gate.
//! * A host thread cannot be stopped by TRIGGER_EXCEPTION (it is host
//!   code); a host call that can never complete returns the model-only TCR
//!   code [`crate::host::TCR_MODEL_HALTED`] instead of blocking forever.

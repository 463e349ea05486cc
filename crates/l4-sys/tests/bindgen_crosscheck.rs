//! Our ABI definitions against the real l4sys headers, through bindgen.
//!
//! Runs when the crate was built with `L4RE_OBJ_X86_64` and/or
//! `L4RE_OBJ_ARM64` naming an L4Re build directory (build.rs runs bindgen
//! over its installed headers; needs libclang, Debian `libclang-dev`):
//!
//!   L4RE_OBJ_X86_64=/path/to/l4re-obj cargo test -p l4-sys --test bindgen_crosscheck -- --nocapture
//!
//! Without them every test here prints SKIPPED.

#[cfg(not(any(l4re_headers_amd64, l4re_headers_arm64)))]
#[test]
fn crosscheck_skipped_without_headers() {
    eprintln!(
        "SKIPPED: bindgen cross-check: no L4Re headers (set L4RE_OBJ_X86_64 / L4RE_OBJ_ARM64 to an L4Re build dir)"
    );
}

/// The checks shared by both architectures; `$b` is the bindgen module.
#[cfg(any(l4re_headers_amd64, l4re_headers_arm64))]
macro_rules! common_checks {
    ($b:path) => {{
        use core::mem::{offset_of, size_of};
        use l4_sys::*;
        use $b as b;
        macro_rules! eq {
            ($ours:expr, $theirs:expr) => {
                assert_eq!($ours as i128, $theirs as i128, "{} vs {}", stringify!($ours), stringify!($theirs));
            };
        }
        // capabilities and selectors
        eq!(cap::CAP_SHIFT, b::L4_CAP_SHIFT);
        eq!(cap::INVALID_CAP, b::L4_INVALID_CAP as i64 as u64);
        eq!(cap::INVALID_CAP_BIT, b::L4_INVALID_CAP_BIT);
        eq!(cap::base::TASK.sel(), b::L4_BASE_TASK_CAP);
        eq!(cap::base::FACTORY.sel(), b::L4_BASE_FACTORY_CAP);
        eq!(cap::base::THREAD.sel(), b::L4_BASE_THREAD_CAP);
        eq!(cap::base::PAGER.sel(), b::L4_BASE_PAGER_CAP);
        eq!(cap::base::LOG.sel(), b::L4_BASE_LOG_CAP);
        eq!(cap::base::ICU.sel(), b::L4_BASE_ICU_CAP);
        eq!(cap::base::SCHEDULER.sel(), b::L4_BASE_SCHEDULER_CAP);
        eq!(cap::base::IOMMU.sel(), b::L4_BASE_IOMMU_CAP);
        eq!(cap::base::DEBUGGER.sel(), b::L4_BASE_DEBUGGER_CAP);
        eq!(cap::base::ARM_SMCCC.sel(), b::L4_BASE_ARM_SMCCC_CAP);
        // syscall operation bits
        eq!(ipc::op::SEND, b::L4_SYSF_SEND);
        eq!(ipc::op::RECV, b::L4_SYSF_RECV);
        eq!(ipc::op::OPEN_WAIT, b::L4_SYSF_OPEN_WAIT);
        eq!(ipc::op::REPLY, b::L4_SYSF_REPLY);
        eq!(ipc::op::CALL, b::L4_SYSF_CALL);
        eq!(ipc::op::WAIT, b::L4_SYSF_WAIT);
        eq!(ipc::op::SEND_AND_WAIT, b::L4_SYSF_SEND_AND_WAIT);
        eq!(ipc::op::REPLY_AND_WAIT, b::L4_SYSF_REPLY_AND_WAIT);
        // protocols
        for (p, theirs) in [
            (Protocol::None, b::L4_PROTO_NONE),
            (Protocol::AllowSyscall, b::L4_PROTO_ALLOW_SYSCALL),
            (Protocol::Irq, b::L4_PROTO_IRQ),
            (Protocol::PageFault, b::L4_PROTO_PAGE_FAULT),
            (Protocol::Exception, b::L4_PROTO_EXCEPTION),
            (Protocol::Sigma0, b::L4_PROTO_SIGMA0),
            (Protocol::IoPageFault, b::L4_PROTO_IO_PAGE_FAULT),
            (Protocol::Kobject, b::L4_PROTO_KOBJECT),
            (Protocol::Task, b::L4_PROTO_TASK),
            (Protocol::Thread, b::L4_PROTO_THREAD),
            (Protocol::Log, b::L4_PROTO_LOG),
            (Protocol::Scheduler, b::L4_PROTO_SCHEDULER),
            (Protocol::Factory, b::L4_PROTO_FACTORY),
            (Protocol::Vm, b::L4_PROTO_VM),
            (Protocol::DmaSpace, b::L4_PROTO_DMA_SPACE),
            (Protocol::IrqSender, b::L4_PROTO_IRQ_SENDER),
            (Protocol::Semaphore, b::L4_PROTO_SEMAPHORE),
            (Protocol::Meta, b::L4_PROTO_META),
            (Protocol::Iommu, b::L4_PROTO_IOMMU),
            (Protocol::Debugger, b::L4_PROTO_DEBUGGER),
            (Protocol::Smccc, b::L4_PROTO_SMCCC),
            (Protocol::VcpuContext, b::L4_PROTO_VCPU_CONTEXT),
        ] {
            assert_eq!(p.label(), theirs as i64, "{p:?}");
        }
        // message tag flags
        eq!(msgtag::TagFlags::TRANSFER_FPU.bits(), b::L4_MSGTAG_TRANSFER_FPU);
        eq!(msgtag::TagFlags::SCHEDULE.bits(), b::L4_MSGTAG_SCHEDULE);
        eq!(msgtag::TagFlags::PROPAGATE.bits(), b::L4_MSGTAG_PROPAGATE);
        eq!(msgtag::TagFlags::ERROR.bits(), b::L4_MSGTAG_ERROR);
        // UTCB
        eq!(utcb::MR_COUNT, b::L4_UTCB_GENERIC_DATA_SIZE);
        eq!(utcb::BR_COUNT, b::L4_UTCB_GENERIC_BUFFERS_SIZE);
        eq!(utcb::UTCB_SIZE, b::L4_UTCB_OFFSET);
        eq!(item::Bdr::INHERIT_FPU, b::L4_UTCB_INHERIT_FPU);
        eq!(size_of::<b::l4_buf_regs_t>(), 8 * (1 + utcb::BR_COUNT));
        eq!(size_of::<b::l4_thread_regs_t>(), 8 * 5);
        eq!(offset_of!(b::l4_thread_regs_t, error), 0);
        eq!(offset_of!(b::l4_thread_regs_t, user), 16);
        eq!(utcb::offset::TCR_USER - utcb::offset::TCR_ERROR, 16);
        // fpages
        eq!(fpage::MemRights::X.bits(), b::L4_FPAGE_X);
        eq!(fpage::MemRights::W.bits(), b::L4_FPAGE_W);
        eq!(fpage::MemRights::R.bits(), b::L4_FPAGE_RO);
        eq!(fpage::MemRights::RWX.bits(), b::L4_FPAGE_RWX);
        eq!(fpage::CapRights::W.bits(), b::L4_CAP_FPAGE_W);
        eq!(fpage::CapRights::S.bits(), b::L4_CAP_FPAGE_S);
        eq!(fpage::CapRights::R.bits(), b::L4_CAP_FPAGE_R);
        eq!(fpage::CapRights::D.bits(), b::L4_CAP_FPAGE_D);
        eq!(fpage::CapRights::RWSD.bits(), b::L4_CAP_FPAGE_RWSD);
        eq!(fpage::FpageType::Memory as u64, b::L4_FPAGE_MEMORY);
        eq!(fpage::FpageType::Io as u64, b::L4_FPAGE_IO);
        eq!(fpage::FpageType::Obj as u64, b::L4_FPAGE_OBJ);
        eq!(fpage::WHOLE_ADDRESS_SPACE, b::L4_WHOLE_ADDRESS_SPACE);
        eq!(item::Cache::Cached as u64, (b::L4_FPAGE_CACHEABLE as u64) << 4);
        eq!(item::Cache::Uncached as u64, (b::L4_FPAGE_UNCACHEABLE as u64) << 4);
        eq!(item::Cache::Bufferable as u64, (b::L4_FPAGE_BUFFERABLE as u64) << 4);
        eq!(item::ObjAttr::NO_REF_CNT.bits(), b::L4_FPAGE_C_NO_REF_CNT);
        eq!(item::ObjAttr::IPCGATE_SVR.bits(), b::L4_FPAGE_C_IPCGATE_SVR);
        eq!(item::ObjAttr::OBJ_RIGHTS.bits(), b::L4_FPAGE_C_OBJ_RIGHTS);
        // items and buffers
        eq!(item::ITEM_MAP, b::L4_ITEM_MAP);
        eq!(item::ITEM_CONT, b::L4_ITEM_CONT);
        eq!(item::MAP_ITEM_GRANT, b::L4_MAP_ITEM_GRANT);
        eq!(item::RCV_ITEM_SINGLE_CAP, b::L4_RCV_ITEM_SINGLE_CAP);
        eq!(item::RCV_ITEM_LOCAL_ID, b::L4_RCV_ITEM_LOCAL_ID);
        eq!(item::RCV_ITEM_FORWARD_MAPPINGS, b::L4_RCV_ITEM_FORWARD_MAPPINGS);
        eq!(item::Bdr::new(1, 0, 0).0, 1u64 << b::L4_BDR_MEM_SHIFT);
        eq!(item::Bdr::new(0, 1, 0).0, 1u64 << b::L4_BDR_IO_SHIFT);
        eq!(item::Bdr::new(0, 0, 1).0, 1u64 << b::L4_BDR_OBJ_SHIFT);
        // errors
        for (e, theirs) in [
            (Errno::Perm, b::L4_EPERM),
            (Errno::NoEnt, b::L4_ENOENT),
            (Errno::Io, b::L4_EIO),
            (Errno::NxIo, b::L4_ENXIO),
            (Errno::Again, b::L4_EAGAIN),
            (Errno::NoMem, b::L4_ENOMEM),
            (Errno::Access, b::L4_EACCESS),
            (Errno::Fault, b::L4_EFAULT),
            (Errno::Busy, b::L4_EBUSY),
            (Errno::Exist, b::L4_EEXIST),
            (Errno::NoDev, b::L4_ENODEV),
            (Errno::NotDir, b::L4_ENOTDIR),
            (Errno::Inval, b::L4_EINVAL),
            (Errno::NoSpc, b::L4_ENOSPC),
            (Errno::Range, b::L4_ERANGE),
            (Errno::NameTooLong, b::L4_ENAMETOOLONG),
            (Errno::NoSys, b::L4_ENOSYS),
            (Errno::BadProto, b::L4_EBADPROTO),
            (Errno::AddrNotAvail, b::L4_EADDRNOTAVAIL),
            (Errno::NoReply, b::L4_ENOREPLY),
            (Errno::MsgTooShort, b::L4_EMSGTOOSHORT),
            (Errno::MsgTooLong, b::L4_EMSGTOOLONG),
            (Errno::MsgMissArg, b::L4_EMSGMISSARG),
            (Errno::MsgErrRange, b::L4_EMSGERRRANGE),
            (Errno::DropReply, b::L4_EDROPREPLY),
        ] {
            assert_eq!(e.value(), theirs as i64, "{e:?}");
        }
        use l4_sys::error::tcr;
        eq!(tcr::MASK, b::L4_IPC_ERROR_MASK);
        eq!(tcr::RCV_BIT, b::L4_IPC_SND_ERR_MASK);
        eq!(tcr::SETIMEOUT, b::L4_IPC_SETIMEOUT);
        eq!(tcr::RETIMEOUT, b::L4_IPC_RETIMEOUT);
        eq!(tcr::ENOT_EXISTENT, b::L4_IPC_ENOT_EXISTENT);
        eq!(tcr::SECANCELED, b::L4_IPC_SECANCELED);
        eq!(tcr::RECANCELED, b::L4_IPC_RECANCELED);
        eq!(tcr::SEMSGCUT, b::L4_IPC_SEMSGCUT);
        eq!(tcr::REMSGCUT, b::L4_IPC_REMSGCUT);
        eq!(tcr::SESNDPFTO, b::L4_IPC_SESNDPFTO);
        eq!(tcr::RESNDPFTO, b::L4_IPC_RESNDPFTO);
        eq!(tcr::SERCVPFTO, b::L4_IPC_SERCVPFTO);
        eq!(tcr::RERCVPFTO, b::L4_IPC_RERCVPFTO);
        eq!(tcr::SEABORTED, b::L4_IPC_SEABORTED);
        eq!(tcr::REABORTED, b::L4_IPC_REABORTED);
        eq!(tcr::SEMAPFAILED, b::L4_IPC_SEMAPFAILED);
        eq!(tcr::REMAPFAILED, b::L4_IPC_REMAPFAILED);
        eq!(tcr::ENO_REPLY_CAP, b::L4_IPC_NO_REPLY_CAP);
        // factory varargs
        eq!(factory::varg::UMWORD & 0xffff, b::L4_VARG_TYPE_UMWORD);
        eq!(factory::varg::MWORD & 0xffff, b::L4_VARG_TYPE_MWORD);
        eq!(factory::varg::FPAGE & 0xffff, b::L4_VARG_TYPE_FPAGE);
        // task
        eq!(task::opcode::MAP, b::L4_TASK_MAP_OP);
        eq!(task::opcode::UNMAP, b::L4_TASK_UNMAP_OP);
        eq!(task::opcode::CAP_INFO, b::L4_TASK_CAP_INFO_OP);
        eq!(task::opcode::ADD_KU_MEM, b::L4_TASK_ADD_KU_MEM_OP);
        eq!(task::unmap_mask::ALL_SPACES, b::L4_FP_ALL_SPACES);
        eq!(task::unmap_mask::DELETE_OBJ, b::L4_FP_DELETE_OBJ);
        // thread
        eq!(thread::opcode::CONTROL, b::L4_THREAD_CONTROL_OP);
        eq!(thread::opcode::EX_REGS, b::L4_THREAD_EX_REGS_OP);
        eq!(thread::opcode::SWITCH, b::L4_THREAD_SWITCH_OP);
        eq!(thread::opcode::STATS, b::L4_THREAD_STATS_OP);
        eq!(thread::opcode::REGISTER_DEL_IRQ, b::L4_THREAD_REGISTER_DELETE_IRQ_OP);
        eq!(thread::opcode::MODIFY_SENDERS, b::L4_THREAD_MODIFY_SENDER_OP);
        eq!(thread::opcode::VCPU_CONTROL, b::L4_THREAD_VCPU_CONTROL_OP);
        eq!(thread::opcode::AMD64_SET_SEGMENT_BASE, b::L4_THREAD_AMD64_SET_SEGMENT_BASE_OP);
        eq!(thread::opcode::AMD64_GET_SEGMENT_INFO, b::L4_THREAD_AMD64_GET_SEGMENT_INFO_OP);
        eq!(thread::opcode::ARM_SET_TPIDRURO, b::L4_THREAD_ARM_TPIDRURO_OP);
        eq!(thread::ControlFlags::SET_PAGER.bits(), b::L4_THREAD_CONTROL_SET_PAGER);
        eq!(thread::ControlFlags::BIND_TASK.bits(), b::L4_THREAD_CONTROL_BIND_TASK);
        eq!(thread::ControlFlags::ALIEN.bits(), b::L4_THREAD_CONTROL_ALIEN);
        eq!(thread::ControlFlags::SET_EXC_HANDLER.bits(), b::L4_THREAD_CONTROL_SET_EXC_HANDLER);
        eq!(thread::ExRegsFlags::CANCEL.bits(), b::L4_THREAD_EX_REGS_CANCEL);
        eq!(thread::ExRegsFlags::TRIGGER_EXCEPTION.bits(), b::L4_THREAD_EX_REGS_TRIGGER_EXCEPTION);
        assert_eq!(
            (thread::ExRegsFlags::ARM64_SET_EL_EL0 | thread::ExRegsFlags::ARM64_SET_EL_EL1).bits()
                & !(b::L4_THREAD_EX_REGS_ARCH_MASK as u64),
            0
        );
        // control MR indices, checked through our encoder
        let (w, _) = thread::Control::new()
            .pager(CapIdx(0x11))
            .exc_handler(CapIdx(0x22))
            .alien(true)
            .bind(0x5000, Cap::new(CapIdx(1)))
            .encode();
        eq!(w[b::L4_THREAD_CONTROL_MR_IDX_PAGER as usize], 0x11000);
        eq!(w[b::L4_THREAD_CONTROL_MR_IDX_EXC_HANDLER as usize], 0x22000);
        eq!(w[b::L4_THREAD_CONTROL_MR_IDX_FLAG_VALS as usize], b::L4_THREAD_CONTROL_ALIEN);
        eq!(w[b::L4_THREAD_CONTROL_MR_IDX_BIND_UTCB as usize], 0x5000);
        eq!(b::L4_THREAD_CONTROL_MR_IDX_BIND_TASK, 6); // first MR after the 6 words: the item
                                                       // receive endpoints, gates, IRQs, ICU, scheduler, log, semaphore
        eq!(rcv_endpoint::BIND_OP, b::L4_RCV_EP_BIND_OP);
        eq!(ipc_gate::GET_INFO_OP, b::L4_IPC_GATE_GET_INFO_OP);
        eq!(irq::opcode::DETACH, b::L4_IRQ_SENDER_OP_DETACH);
        eq!(irq::opcode::BIND_VCPU, b::L4_IRQ_SENDER_OP_BIND_VCPU);
        eq!(irq::opcode::EOI, b::L4_IRQ_OP_EOI);
        eq!(icu::opcode::BIND, b::L4_ICU_OP_BIND);
        eq!(icu::opcode::UNBIND, b::L4_ICU_OP_UNBIND);
        eq!(icu::opcode::INFO, b::L4_ICU_OP_INFO);
        eq!(icu::opcode::MSI_INFO, b::L4_ICU_OP_MSI_INFO);
        eq!(icu::opcode::UNMASK, b::L4_ICU_OP_UNMASK);
        eq!(icu::opcode::MASK, b::L4_ICU_OP_MASK);
        eq!(icu::opcode::SET_MODE, b::L4_ICU_OP_SET_MODE);
        eq!(icu::FLAG_MSI, b::L4_ICU_FLAG_MSI);
        eq!(icu::IrqMode::VALID.bits(), b::L4_IRQ_F_SET_MODE);
        eq!(icu::IrqMode::LEVEL.bits(), b::L4_IRQ_F_LEVEL);
        eq!(icu::IrqMode::NEGATIVE.bits(), b::L4_IRQ_F_NEG);
        eq!(icu::IrqMode::BOTH.bits(), b::L4_IRQ_F_BOTH);
        eq!(icu::IrqMode::SET_WAKEUP.bits(), b::L4_IRQ_F_SET_WAKEUP);
        eq!(icu::IrqMode::CLEAR_WAKEUP.bits(), b::L4_IRQ_F_CLEAR_WAKEUP);
        eq!(scheduler::opcode::INFO, b::L4_SCHEDULER_INFO_OP);
        eq!(scheduler::opcode::RUN_THREAD, b::L4_SCHEDULER_RUN_THREAD_OP);
        eq!(scheduler::opcode::IDLE_TIME, b::L4_SCHEDULER_IDLE_TIME_OP);
        eq!(log::WRITE_OP, b::L4_VCON_WRITE_OP);
        eq!(log::READ_OP, b::L4_VCON_READ_OP);
        eq!(log::WRITE_MAX, b::L4_VCON_WRITE_SIZE);
        eq!(semaphore::DOWN_OP, b::L4_SEMAPHORE_OP_DOWN);
        // sigma0 request codes: ~0xFF | id
        eq!(sigma0::req::FPAGE_RAM, (b::SIGMA0_REQ_MAGIC as i64 as u64) | b::SIGMA0_REQ_ID_FPAGE_RAM as u64);
        eq!(sigma0::req::FPAGE_IOMEM, (b::SIGMA0_REQ_MAGIC as i64 as u64) | b::SIGMA0_REQ_ID_FPAGE_IOMEM as u64);
        eq!(
            sigma0::req::FPAGE_IOMEM_CACHED,
            (b::SIGMA0_REQ_MAGIC as i64 as u64) | b::SIGMA0_REQ_ID_FPAGE_IOMEM_CACHED as u64
        );
        eq!(sigma0::req::FPAGE_ANY, (b::SIGMA0_REQ_MAGIC as i64 as u64) | b::SIGMA0_REQ_ID_FPAGE_ANY as u64);
        eq!(sigma0::req::KIP, (b::SIGMA0_REQ_MAGIC as i64 as u64) | b::SIGMA0_REQ_ID_KIP as u64);
        eq!(sigma0::req::DEBUG_DUMP, (b::SIGMA0_REQ_MAGIC as i64 as u64) | b::SIGMA0_REQ_ID_DEBUG_DUMP as u64);
        // KIP
        eq!(kip::MAGIC, b::L4_KERNEL_INFO_MAGIC);
        eq!(kip::VERSION_MASK, b::L4_KIP_VERSION_FIASCO_MASK);
        eq!(kip::offset::MAGIC, offset_of!(b::l4_kernel_info_t, magic));
        eq!(kip::offset::VERSION, offset_of!(b::l4_kernel_info_t, version));
        eq!(kip::offset::OFFSET_VERSION_STRINGS, offset_of!(b::l4_kernel_info_t, offset_version_strings));
        eq!(kip::offset::SIGMA0_IP, offset_of!(b::l4_kernel_info_t, sigma0_ip));
        eq!(kip::offset::ROOT_IP, offset_of!(b::l4_kernel_info_t, root_ip));
        eq!(kip::offset::CLOCK, offset_of!(b::l4_kernel_info_t, _clock_val));
        eq!(kip::offset::FREQUENCY_CPU, offset_of!(b::l4_kernel_info_t, frequency_cpu));
        eq!(kip::offset::DT_ADDR, offset_of!(b::l4_kernel_info_t, dt_addr));
        eq!(kip::offset::USER_PTR, offset_of!(b::l4_kernel_info_t, user_ptr));
        eq!(kip::offset::SCHED_GRANULARITY, offset_of!(b::l4_kernel_info_t, scheduler_granularity));
        eq!(kip::offset::MEM_DESCS, offset_of!(b::l4_kernel_info_t, mem_descs));
        eq!(kip::offset::MEM_DESCS_NUM, offset_of!(b::l4_kernel_info_t, mem_descs_num));
        eq!(kip::offset::PLATFORM_NAME, offset_of!(b::l4_kernel_info_t, platform_info));
        // boot-module info
        eq!(bootinfo::MOD_SIZE, size_of::<b::l4util_l4mod_mod>());
        eq!(offset_of!(b::l4util_l4mod_mod, flags), 0x00);
        eq!(offset_of!(b::l4util_l4mod_mod, mod_start), 0x08);
        eq!(offset_of!(b::l4util_l4mod_mod, mod_end), 0x10);
        eq!(offset_of!(b::l4util_l4mod_mod, cmdline), 0x18);
        eq!(offset_of!(b::l4util_l4mod_info, cmdline), 0x08);
        eq!(offset_of!(b::l4util_l4mod_info, mods_addr), 0x10);
        eq!(offset_of!(b::l4util_l4mod_info, mods_count), 0x18);
    }};
}

#[cfg(l4re_headers_amd64)]
#[test]
fn amd64_headers_agree() {
    use core::mem::{offset_of, size_of};
    use l4_sys::exc::amd64::{mr, MSG_WORDS};
    use l4_sys::l4re_bindings::amd64 as b;
    common_checks!(l4_sys::l4re_bindings::amd64);
    assert_eq!(size_of::<b::l4_exc_regs_t>(), 8 * MSG_WORDS);
    for (ours, theirs) in [
        (mr::R15, offset_of!(b::l4_exc_regs_t, r15)),
        (mr::R8, offset_of!(b::l4_exc_regs_t, r8)),
        (mr::RDI, offset_of!(b::l4_exc_regs_t, rdi)),
        (mr::RSI, offset_of!(b::l4_exc_regs_t, rsi)),
        (mr::RBP, offset_of!(b::l4_exc_regs_t, rbp)),
        (mr::PFA, offset_of!(b::l4_exc_regs_t, pfa)),
        (mr::RBX, offset_of!(b::l4_exc_regs_t, rbx)),
        (mr::RDX, offset_of!(b::l4_exc_regs_t, rdx)),
        (mr::RCX, offset_of!(b::l4_exc_regs_t, rcx)),
        (mr::RAX, offset_of!(b::l4_exc_regs_t, rax)),
        (mr::TRAPNO, offset_of!(b::l4_exc_regs_t, trapno)),
        (mr::ERR, offset_of!(b::l4_exc_regs_t, err)),
        (mr::IP, offset_of!(b::l4_exc_regs_t, ip)),
        (mr::CS, offset_of!(b::l4_exc_regs_t, dummy1)),
        (mr::FLAGS, offset_of!(b::l4_exc_regs_t, flags)),
        (mr::SP, offset_of!(b::l4_exc_regs_t, sp)),
        (mr::SS, offset_of!(b::l4_exc_regs_t, ss)),
        (mr::FS_BASE, offset_of!(b::l4_exc_regs_t, fs_base)),
        (mr::GS_BASE, offset_of!(b::l4_exc_regs_t, gs_base)),
        (mr::SEGS, offset_of!(b::l4_exc_regs_t, ds)),
    ] {
        assert_eq!(ours * 8, theirs, "MR {ours}");
    }
    eprintln!("bindgen cross-check (amd64 headers): all values, sizes and offsets agree");
}

#[cfg(l4re_headers_arm64)]
#[test]
fn arm64_headers_agree() {
    use core::mem::{offset_of, size_of};
    use l4_sys::exc::arm64::{mr, MSG_WORDS};
    use l4_sys::l4re_bindings::arm64 as b;
    common_checks!(l4_sys::l4re_bindings::arm64);
    assert_eq!(size_of::<b::l4_exc_regs_t>(), 8 * MSG_WORDS);
    for (ours, theirs) in [
        (mr::ERET_WORK, offset_of!(b::l4_exc_regs_t, eret_work)),
        (mr::X0, offset_of!(b::l4_exc_regs_t, r)),
        (mr::ERR, offset_of!(b::l4_exc_regs_t, err)),
        (mr::PFA, offset_of!(b::l4_exc_regs_t, pfa)),
        (mr::SP, offset_of!(b::l4_exc_regs_t, sp)),
        (mr::PC, offset_of!(b::l4_exc_regs_t, __bindgen_anon_1)), // union { ip, pc }
        (mr::PSTATE, offset_of!(b::l4_exc_regs_t, __bindgen_anon_2)), // union { flags, pstate }
        (mr::TPIDRURO, offset_of!(b::l4_exc_regs_t, tpidruro)),
        (mr::TPIDRURW, offset_of!(b::l4_exc_regs_t, tpidrurw)),
    ] {
        assert_eq!(ours * 8, theirs, "MR {ours}");
    }
    eprintln!("bindgen cross-check (arm64 headers): all values, sizes and offsets agree");
}

//! The message tag: the one word that says what a message is.
//!
//! Layout from `l4sys/include/types.h` (`l4_msgtag_t`, `l4_msgtag()`,
//! `l4_msgtag_label()` with an arithmetic shift) and the kernel's
//! `src/abi/l4_types.cpp` (`L4_msg_tag`): bits 0–5 untyped words, 6–11 typed
//! items, 12–15 flags, 16–63 the signed label.

/// Number of message registers (`L4_UTCB_GENERIC_DATA_SIZE`).
pub const MAX_WORDS: usize = 63;

/// Protocol labels the kernel and sigma0 understand (`L4_msgtag_protocol` in
/// `l4sys/include/types.h`, `L4_msg_tag::Protocol` in the kernel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i64)]
pub enum Protocol {
    /// Plain IPC.
    None = 0,
    /// Allow a syscall (alien threads) / page-fault exception.
    AllowSyscall = 1,
    /// IRQ and ICU operations (`L4_PROTO_IRQ`).
    Irq = -1,
    /// Kernel-synthesised page-fault message (`L4_PROTO_PAGE_FAULT`).
    PageFault = -2,
    /// Kernel-synthesised exception message (`L4_PROTO_EXCEPTION`).
    Exception = -5,
    /// The sigma0 protocol (`L4_PROTO_SIGMA0`).
    Sigma0 = -6,
    /// x86 I/O-port fault (`L4_PROTO_IO_PAGE_FAULT`).
    IoPageFault = -8,
    /// Generic kernel-object ops: gate/IRQ bind, gate info (`L4_PROTO_KOBJECT`).
    Kobject = -10,
    /// Task ops, and factory "create task" (`L4_PROTO_TASK`).
    Task = -11,
    /// Thread ops, and factory "create thread" (`L4_PROTO_THREAD`).
    Thread = -12,
    /// Log / vcon (`L4_PROTO_LOG`).
    Log = -13,
    /// Scheduler (`L4_PROTO_SCHEDULER`).
    Scheduler = -14,
    /// Factory (`L4_PROTO_FACTORY`).
    Factory = -15,
    /// VM (`L4_PROTO_VM`).
    Vm = -16,
    /// DMA space (`L4_PROTO_DMA_SPACE`).
    DmaSpace = -17,
    /// IRQ sender ops, and factory "create IRQ" (`L4_PROTO_IRQ_SENDER`).
    IrqSender = -18,
    /// Semaphore (`L4_PROTO_SEMAPHORE`).
    Semaphore = -20,
    /// L4Re meta protocol (`L4_PROTO_META`).
    Meta = -21,
    /// IOMMU (`L4_PROTO_IOMMU`).
    Iommu = -22,
    /// Debugger / JDB (`L4_PROTO_DEBUGGER`).
    Debugger = -23,
    /// Arm SMC calls (`L4_PROTO_SMCCC`).
    Smccc = -24,
    /// vCPU context (`L4_PROTO_VCPU_CONTEXT`).
    VcpuContext = -25,
}

impl Protocol {
    /// The label value carried in a tag.
    pub const fn label(self) -> i64 {
        self as i64
    }

    /// The protocol a label names, if any.
    pub fn from_label(label: i64) -> Option<Self> {
        use Protocol::*;
        Some(match label {
            0 => None,
            1 => AllowSyscall,
            -1 => Irq,
            -2 => PageFault,
            -5 => Exception,
            -6 => Sigma0,
            -8 => IoPageFault,
            -10 => Kobject,
            -11 => Task,
            -12 => Thread,
            -13 => Log,
            -14 => Scheduler,
            -15 => Factory,
            -16 => Vm,
            -17 => DmaSpace,
            -18 => IrqSender,
            -20 => Semaphore,
            -21 => Meta,
            -22 => Iommu,
            -23 => Debugger,
            -24 => Smccc,
            -25 => VcpuContext,
            _ => return Option::None,
        })
    }
}

bitflags::bitflags! {
    /// Tag flags, bits 12–15 (`L4_MSGTAG_*` in `l4sys/include/types.h`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct TagFlags: u64 {
        /// Transfer the FPU state with the message (`L4_MSGTAG_TRANSFER_FPU`).
        const TRANSFER_FPU = 0x1000;
        /// Do not donate the time slice (`L4_MSGTAG_SCHEDULE`).
        const SCHEDULE = 0x2000;
        /// Propagate (`L4_MSGTAG_PROPAGATE`); not implemented by Fiasco.
        const PROPAGATE = 0x4000;
        /// Output only: the IPC failed; the code is in the TCR (`L4_MSGTAG_ERROR`).
        const ERROR = 0x8000;
    }
}

/// A message tag (`l4_msgtag_t`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct MsgTag(pub u64);

impl MsgTag {
    /// Builds a tag (`l4_msgtag(label, words, items, flags)`). Words and items
    /// are cut to their 6-bit fields as the C helper does.
    pub const fn new(label: i64, words: usize, items: usize, flags: TagFlags) -> Self {
        MsgTag(((label as u64) << 16) | (words as u64 & 0x3f) | ((items as u64 & 0x3f) << 6) | (flags.bits() & 0xf000))
    }

    /// A tag for a kernel protocol.
    pub const fn proto(p: Protocol, words: usize, items: usize) -> Self {
        Self::new(p.label(), words, items, TagFlags::empty())
    }

    /// The signed label (`l4_msgtag_label`).
    pub const fn label(self) -> i64 {
        (self.0 as i64) >> 16
    }

    /// Untyped words (`l4_msgtag_words`).
    pub const fn words(self) -> usize {
        (self.0 & 0x3f) as usize
    }

    /// Typed items (`l4_msgtag_items`).
    pub const fn items(self) -> usize {
        ((self.0 >> 6) & 0x3f) as usize
    }

    /// Flag bits (`l4_msgtag_flags`).
    pub const fn flags(self) -> TagFlags {
        TagFlags::from_bits_truncate(self.0 & 0xf000)
    }

    /// Did the IPC fail (`l4_msgtag_has_error`)?
    pub const fn has_error(self) -> bool {
        self.0 & 0x8000 != 0
    }

    /// Is this a page-fault message (`l4_msgtag_is_page_fault`)?
    pub const fn is_page_fault(self) -> bool {
        self.label() == Protocol::PageFault.label()
    }

    /// Is this an exception message (`l4_msgtag_is_exception`)?
    pub const fn is_exception(self) -> bool {
        self.label() == Protocol::Exception.label()
    }

    /// Is this the sigma0 protocol (`l4_msgtag_is_sigma0`)?
    pub const fn is_sigma0(self) -> bool {
        self.label() == Protocol::Sigma0.label()
    }

    /// Is this an IO page fault (`l4_msgtag_is_io_page_fault`)?
    pub const fn is_io_page_fault(self) -> bool {
        self.label() == Protocol::IoPageFault.label()
    }

    /// Number of message registers the message occupies (words + 2·items).
    pub const fn mr_len(self) -> usize {
        self.words() + 2 * self.items()
    }

    /// Does the message fit into the message registers?
    pub const fn fits(self) -> bool {
        self.mr_len() <= MAX_WORDS
    }
}

impl core::fmt::Debug for MsgTag {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "MsgTag{{label: {}, words: {}, items: {}, flags: {:#x}}}",
            self.label(),
            self.words(),
            self.items(),
            self.0 & 0xf000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values from the fact sheet §2.1 and §4.1 (l4sys types.h l4_msgtag()).
    #[test]
    fn factory_create_task_tag_matches_header_arithmetic() {
        let t = MsgTag::proto(Protocol::Factory, 3, 0);
        assert_eq!(t.0, 0xFFFF_FFFF_FFF1_0003);
        assert_eq!(t.label(), -15);
        assert_eq!(t.words(), 3);
        assert_eq!(t.items(), 0);
    }

    #[test]
    fn fields_round_trip_and_are_masked() {
        let t = MsgTag::new(-12, 6, 1, TagFlags::SCHEDULE);
        assert_eq!(t.0, ((-12i64 as u64) << 16) | 0x2000 | (1 << 6) | 6);
        assert_eq!((t.label(), t.words(), t.items()), (-12, 6, 1));
        assert_eq!(t.flags(), TagFlags::SCHEDULE);
        // words and items are 6-bit fields, like the C helper
        let over = MsgTag::new(0, 64, 65, TagFlags::empty());
        assert_eq!((over.words(), over.items()), (0, 1));
    }

    #[test]
    fn error_flag_and_predicates() {
        assert!(MsgTag(0x8000).has_error());
        assert!(!MsgTag(0x7000).has_error());
        assert!(MsgTag::proto(Protocol::PageFault, 2, 0).is_page_fault());
        assert!(MsgTag::proto(Protocol::Exception, 26, 0).is_exception());
        assert!(MsgTag::proto(Protocol::Sigma0, 1, 0).is_sigma0());
        assert!(MsgTag::proto(Protocol::IoPageFault, 2, 0).is_io_page_fault());
    }

    #[test]
    fn positive_labels_and_fit() {
        let t = MsgTag::new(0x1234_5678, 63, 0, TagFlags::empty());
        assert_eq!(t.label(), 0x1234_5678);
        assert!(t.fits());
        assert!(!MsgTag::new(0, 62, 1, TagFlags::empty()).fits());
    }

    #[test]
    fn protocol_labels_round_trip() {
        for l in -30..5 {
            if let Some(p) = Protocol::from_label(l) {
                assert_eq!(p.label(), l);
            }
        }
        assert_eq!(Protocol::from_label(-19), None);
        assert_eq!(Protocol::Debugger.label(), -23);
        assert_eq!(Protocol::IrqSender.label(), -18);
    }
}

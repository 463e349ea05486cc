//! Exception-register layouts (`l4_exc_regs_t`) of both architectures: what
//! an exception handler finds in its MRs, and what a full-size reply writes
//! back into the thread. The basis for capturing and restoring a thread.
//!
//! amd64 from `l4sys/include/ARCH-amd64/arch/utcb.h` and the kernel's
//! `src/kern/ia32/64/trap_state-amd64.cpp`; arm64 from
//! `l4sys/include/ARCH-arm64/arch/utcb.h` and the kernel's
//! `src/kern/arm/64/entry_frame-arm.cpp`, `arm/64/trap_state-arm.cpp`.
//! Message sizes (`L4_exception_ipc::Msg_size`): amd64 26, arm64 40.
//! The registers are kept as the MR words themselves (so a capture is a copy
//! and a restore is the same copy back) with named indices and accessors.
//! These are plain data on any host: the model and the image format use them.

/// The architectures the ABI covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// x86-64.
    Amd64,
    /// AArch64.
    Arm64,
}

/// Bytes of the amd64 restartable entry: 4 x `mov r64, r64` (3 bytes) + `syscall` (2).
pub const RESTART_LEN_AMD64: u64 = 4 * 3 + 2;
/// Bytes of the arm64 restartable entry: 4 x `mov xd, xn` + `svc #0`, 4 bytes each.
pub const RESTART_LEN_ARM64: u64 = 5 * 4;

const RESTART_SEQUENCE_AMD64: [u8; RESTART_LEN_AMD64 as usize] =
    [0x4c, 0x89, 0xc8, 0x4c, 0x89, 0xd6, 0x4c, 0x89, 0xe2, 0x4d, 0x89, 0xe8, 0x0f, 0x05];
const RESTART_SEQUENCE_ARM64: [u8; RESTART_LEN_ARM64 as usize] = [
    0xe0, 0x03, 0x04, 0xaa, // orr x0, xzr, x4
    0xe1, 0x03, 0x05, 0xaa, // orr x1, xzr, x5
    0xe2, 0x03, 0x06, 0xaa, // orr x2, xzr, x6
    0xe3, 0x03, 0x07, 0xaa, // orr x3, xzr, x7
    0x01, 0x00, 0x00, 0xd4, // svc #0
];

/// Where the restartable entry keeps a kernel call's inputs: message
/// word indices of the exception register set. They still hold the inputs
/// when the call returns or is cancelled (the kernel preserves them), so a
/// checkpoint reads an interrupted call's timeout from here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartRegs {
    /// The message tag (moved to rax / x0).
    pub tag: usize,
    /// The label (rsi / x1).
    pub label: usize,
    /// The destination selector and operation (rdx / x2).
    pub dest: usize,
    /// The timeout pair (r8 / x3).
    pub timeout: usize,
    /// The entry stamp: the free-running counter (TSC / CNTVCT_EL0) read
    /// just before the inputs are moved, i.e. when the call was first made.
    pub stamp: usize,
}

impl Arch {
    /// The architecture this code is compiled for, if it is one of the two.
    pub const fn current() -> Option<Arch> {
        if cfg!(target_arch = "x86_64") {
            Some(Arch::Amd64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Arch::Arm64)
        } else {
            None
        }
    }

    /// Length of the restartable kernel-entry sequence of `l4_sys::arch`
    /// (four register moves, then `syscall` / `svc #0`: 14 bytes on amd64,
    /// 20 on arm64): how far to move the IP of a thread whose kernel call
    /// was cancelled so that resuming it issues the same call again. The
    /// sequence reads the call's inputs from registers the kernel
    /// preserves, so the rewound thread needs nothing else restored.
    pub const fn restart_len(self) -> u64 {
        match self {
            Arch::Amd64 => RESTART_LEN_AMD64,
            Arch::Arm64 => RESTART_LEN_ARM64,
        }
    }

    /// The machine code of l4-sys's restartable kernel entry, as it stands
    /// before the IP of a thread inside a kernel call: amd64 `mov rax, r9;
    /// mov rsi, r10; mov rdx, r12; mov r8, r13; syscall`; arm64 `mov x0,
    /// x4; mov x1, x5; mov x2, x6; mov x3, x7; svc #0`. A thread whose code
    /// before its IP is not this was not in a kernel call (whatever its
    /// registers say), and must not be rewound.
    pub const fn restart_sequence(self) -> &'static [u8] {
        match self {
            Arch::Amd64 => &RESTART_SEQUENCE_AMD64,
            Arch::Arm64 => &RESTART_SEQUENCE_ARM64,
        }
    }

    /// The registers the restartable entry reads its inputs from (r9,
    /// r10, r12, r13 on amd64; x4..x7 on arm64) and keeps its entry stamp
    /// in (r14 / x8).
    pub const fn restart_regs(self) -> RestartRegs {
        match self {
            Arch::Amd64 => RestartRegs {
                tag: amd64::mr::R9,
                label: amd64::mr::R10,
                dest: amd64::mr::R12,
                timeout: amd64::mr::R13,
                stamp: amd64::mr::R14,
            },
            Arch::Arm64 => RestartRegs {
                tag: arm64::mr::X0 + 4,
                label: arm64::mr::X0 + 5,
                dest: arm64::mr::X0 + 6,
                timeout: arm64::mr::X0 + 7,
                stamp: arm64::mr::X0 + 8,
            },
        }
    }

    /// Words of the exception message (and of a full register reply).
    pub const fn exc_words(self) -> usize {
        match self {
            Arch::Amd64 => amd64::MSG_WORDS,
            Arch::Arm64 => arm64::MSG_WORDS,
        }
    }
}

/// amd64 register layout.
pub mod amd64 {
    /// Words of the exception message.
    pub const MSG_WORDS: usize = 26;

    /// MR indices of `l4_exc_regs_t`.
    #[allow(missing_docs)]
    pub mod mr {
        pub const R15: usize = 0;
        pub const R14: usize = 1;
        pub const R13: usize = 2;
        pub const R12: usize = 3;
        pub const R11: usize = 4;
        pub const R10: usize = 5;
        pub const R9: usize = 6;
        pub const R8: usize = 7;
        pub const RDI: usize = 8;
        pub const RSI: usize = 9;
        pub const RBP: usize = 10;
        /// Fault address (cr2).
        pub const PFA: usize = 11;
        pub const RBX: usize = 12;
        pub const RDX: usize = 13;
        pub const RCX: usize = 14;
        pub const RAX: usize = 15;
        pub const TRAPNO: usize = 16;
        /// CPU error code.
        pub const ERR: usize = 17;
        pub const IP: usize = 18;
        /// CS ("dummy1"); a reply cannot change it.
        pub const CS: usize = 19;
        pub const FLAGS: usize = 20;
        pub const SP: usize = 21;
        pub const SS: usize = 22;
        pub const FS_BASE: usize = 23;
        /// = the thread's UTCB + 0x1F8: give it back unchanged.
        pub const GS_BASE: usize = 24;
        /// ds, es, fs, gs as four u16, little-endian, in one word.
        pub const SEGS: usize = 25;
    }

    /// Trap number of an exception forced by ex_regs TRIGGER_EXCEPTION.
    pub const TRAP_TRIGGERED: u64 = 0xFF;
    /// vCPU upcall.
    pub const TRAP_VCPU_UPCALL: u64 = 0xFE;
    /// Page fault.
    pub const TRAP_PAGE_FAULT: u64 = 14;
    /// Invalid opcode (#UD).
    pub const TRAP_UD: u64 = 6;
    /// General protection (#GP).
    pub const TRAP_GP: u64 = 13;
    /// Breakpoint (#BP).
    pub const TRAP_BP: u64 = 3;
    /// Divide error (#DE).
    pub const TRAP_DE: u64 = 0;

    /// The register set, in MR order.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ExcRegs(pub [u64; MSG_WORDS]);

    impl ExcRegs {
        /// Instruction pointer.
        pub fn ip(&self) -> u64 {
            self.0[mr::IP]
        }
        /// Stack pointer.
        pub fn sp(&self) -> u64 {
            self.0[mr::SP]
        }
        /// rflags.
        pub fn flags(&self) -> u64 {
            self.0[mr::FLAGS]
        }
        /// Trap number.
        pub fn trapno(&self) -> u64 {
            self.0[mr::TRAPNO]
        }
        /// The UTCB address the thread's GS points at.
        pub fn utcb(&self) -> u64 {
            self.0[mr::GS_BASE].wrapping_sub(0x1F8)
        }
        /// Sets the instruction pointer.
        pub fn set_ip(&mut self, v: u64) {
            self.0[mr::IP] = v;
        }
        /// Sets the stack pointer.
        pub fn set_sp(&mut self, v: u64) {
            self.0[mr::SP] = v;
        }
        /// Was this exception forced by ex_regs TRIGGER_EXCEPTION?
        pub fn is_triggered(&self) -> bool {
            self.trapno() == TRAP_TRIGGERED
        }
        /// For an unresolved page fault: the address with the write bit
        /// (`l4_utcb_exc_pfa`).
        pub fn page_fault(&self) -> Option<u64> {
            (self.trapno() == TRAP_PAGE_FAULT).then_some((self.0[mr::PFA] & !7) | (self.0[mr::ERR] & 2))
        }
    }
}

/// arm64 register layout.
pub mod arm64 {
    /// Words of the exception message.
    pub const MSG_WORDS: usize = 40;

    /// MR indices of `l4_exc_regs_t`.
    pub mod mr {
        /// Kernel continuation slot: pass back unchanged.
        pub const ERET_WORK: usize = 0;
        /// x0; xN is at `X0 + N` (N = 0..=30).
        pub const X0: usize = 1;
        /// Reserved (kernel stack pointer slot).
        pub const KSP: usize = 32;
        /// ESR (exception class = err >> 26).
        pub const ERR: usize = 33;
        /// FAR.
        pub const PFA: usize = 34;
        /// SP_EL0.
        pub const SP: usize = 35;
        /// PC.
        pub const PC: usize = 36;
        /// PSTATE (SPSR).
        pub const PSTATE: usize = 37;
        /// TPIDRRO_EL0 = the thread's UTCB: keep it.
        pub const TPIDRURO: usize = 38;
        /// TPIDR_EL0.
        pub const TPIDRURW: usize = 39;
    }

    /// Exception class of an exception forced by ex_regs TRIGGER_EXCEPTION.
    pub const EC_TRIGGERED: u64 = 0x3E;
    /// vCPU upcall.
    pub const EC_VCPU_UPCALL: u64 = 0x3F;
    /// Instruction abort from EL0.
    pub const EC_IABT_LOW: u64 = 0x20;
    /// Data abort from EL0.
    pub const EC_DABT_LOW: u64 = 0x24;
    /// Unknown / undefined instruction.
    pub const EC_UNKNOWN: u64 = 0x00;

    /// The register set, in MR order.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct ExcRegs(pub [u64; MSG_WORDS]);

    impl ExcRegs {
        /// General register xN (N = 0..=30).
        pub fn x(&self, n: usize) -> u64 {
            self.0[mr::X0 + n.min(30)]
        }
        /// Sets xN (N = 0..=30; others ignored).
        pub fn set_x(&mut self, n: usize, v: u64) {
            if n <= 30 {
                self.0[mr::X0 + n] = v;
            }
        }
        /// PC.
        pub fn ip(&self) -> u64 {
            self.0[mr::PC]
        }
        /// SP_EL0.
        pub fn sp(&self) -> u64 {
            self.0[mr::SP]
        }
        /// PSTATE.
        pub fn flags(&self) -> u64 {
            self.0[mr::PSTATE]
        }
        /// Sets PC.
        pub fn set_ip(&mut self, v: u64) {
            self.0[mr::PC] = v;
        }
        /// Sets SP_EL0.
        pub fn set_sp(&mut self, v: u64) {
            self.0[mr::SP] = v;
        }
        /// Exception class.
        pub fn ec(&self) -> u64 {
            (self.0[mr::ERR] >> 26) & 0x3F
        }
        /// The UTCB address (TPIDRRO_EL0).
        pub fn utcb(&self) -> u64 {
            self.0[mr::TPIDRURO]
        }
        /// Was this exception forced by ex_regs TRIGGER_EXCEPTION?
        pub fn is_triggered(&self) -> bool {
            self.ec() == EC_TRIGGERED
        }
        /// For an unresolved page fault: the address with the write bit in
        /// bit 1 (ESR WnR is bit 6), as `l4_utcb_exc_pfa` gives it.
        pub fn page_fault(&self) -> Option<u64> {
            let is_pf = (self.ec() & 0x30) == 0x20;
            let write = (self.0[mr::ERR] >> 6) & 1;
            is_pf.then_some((self.0[mr::PFA] & !7) | (write << 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_sizes() {
        assert_eq!(Arch::Amd64.exc_words(), 26);
        assert_eq!(Arch::Arm64.exc_words(), 40);
        assert_eq!(Arch::current(), Some(Arch::Amd64));
    }

    #[test]
    fn amd64_offsets_match_l4_exc_regs_t() {
        // byte offsets of l4_exc_regs_t (ARCH-amd64 utcb.h): ip at 0x90,
        // sp at 0xA8, trapno at 0x80, gs_base at 0xC0
        assert_eq!(amd64::mr::IP * 8, 0x90);
        assert_eq!(amd64::mr::SP * 8, 0xA8);
        assert_eq!(amd64::mr::TRAPNO * 8, 0x80);
        assert_eq!(amd64::mr::GS_BASE * 8, 0xC0);
        assert_eq!(amd64::mr::RAX, 15);
        let mut r = amd64::ExcRegs([0; 26]);
        r.0[amd64::mr::TRAPNO] = 0xFF;
        r.0[amd64::mr::GS_BASE] = 0x7F_FF00_01F8;
        r.set_ip(0x40_1000);
        assert!(r.is_triggered());
        assert_eq!(r.utcb(), 0x7F_FF00_0000);
        assert_eq!(r.0[18], 0x40_1000);
        r.0[amd64::mr::TRAPNO] = 14;
        r.0[amd64::mr::PFA] = 0x1234_5677;
        r.0[amd64::mr::ERR] = 0x6;
        assert_eq!(r.page_fault(), Some(0x1234_5672));
    }

    #[test]
    fn arm64_offsets_match_l4_exc_regs_t() {
        // ARCH-arm64 utcb.h: eret_work, r[31], reserved, err, pfa, sp, pc, pstate, tpidruro, tpidrurw
        assert_eq!(arm64::mr::X0 + 30, 31);
        assert_eq!(arm64::mr::ERR * 8, 0x108);
        assert_eq!(arm64::mr::PC * 8, 0x120);
        assert_eq!(arm64::mr::TPIDRURW, 39);
        let mut r = arm64::ExcRegs([0; 40]);
        r.0[arm64::mr::ERR] = 0x3E << 26;
        assert!(r.is_triggered());
        r.set_x(0, 7);
        r.set_x(31, 9); // ignored
        assert_eq!(r.x(0), 7);
        assert_eq!(r.0[1], 7);
        assert_eq!(r.0[32], 0);
        r.0[arm64::mr::ERR] = (0x24 << 26) | (1 << 6);
        r.0[arm64::mr::PFA] = 0x4800_1234;
        assert_eq!(r.page_fault(), Some(0x4800_1232));
        r.0[arm64::mr::ERR] = 0x15 << 26;
        assert_eq!(r.page_fault(), None);
    }
}

//! Page-fault messages as the pager receives them, and the reply that
//! resolves them.
//!
//! From the kernel's `src/kern/thread-ipc.cpp` (`handle_page_fault_pager`)
//! and `PF::addr_to_msgword0` in `src/kern/ia32/paging-ia32.cpp` and
//! `src/kern/arm/paging-arm.cpp`; reply form from l4re-core sigma0
//! `server/src/memmap.cc`. The message: label −2, 2 words; MR0 = fault
//! address with bits 0–2 as flags, MR1 = faulting IP. Bit 0 has opposite
//! senses on the two architectures.

use crate::exc::Arch;
use crate::fpage::Fpage;
use crate::item::{Cache, SendItem};

/// A decoded page fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageFault {
    /// Faulting address (bits 0–2 cleared).
    pub addr: u64,
    /// Faulting instruction.
    pub ip: u64,
    /// A write access.
    pub write: bool,
    /// An instruction fetch.
    pub exec: bool,
    /// The page was present (a protection fault, e.g. a write to a read-only
    /// page) rather than missing.
    pub present: bool,
}

impl PageFault {
    /// Decodes MR0/MR1 for `arch`.
    pub const fn decode(arch: Arch, mr0: u64, mr1: u64) -> Self {
        let bit0 = mr0 & 1 != 0;
        PageFault {
            addr: mr0 & !7,
            ip: mr1,
            write: mr0 & 2 != 0,
            exec: mr0 & 4 != 0,
            present: match arch {
                // x86 error-code P bit: 1 = protection violation on a present page
                Arch::Amd64 => bit0,
                // arm: 1 = translation fault (not mapped)
                Arch::Arm64 => !bit0,
            },
        }
    }

    /// Encodes MR0 as the kernel of `arch` would.
    pub const fn encode_mr0(&self, arch: Arch) -> u64 {
        let bit0 = match arch {
            Arch::Amd64 => self.present,
            Arch::Arm64 => !self.present,
        };
        (self.addr & !7) | (bit0 as u64) | ((self.write as u64) << 1) | ((self.exec as u64) << 2)
    }
}

/// The map item that resolves a fault at `fault_addr` with the page(s)
/// `backing` (in the pager's own space): the hot spot is the fault address
/// rounded down to the fpage size, so it lands where the child faulted.
pub const fn resolve(fault_addr: u64, backing: Fpage, cache: Cache) -> SendItem {
    let size_mask = match backing.order() {
        o if o >= 64 => u64::MAX,
        o => (1u64 << o) - 1,
    };
    SendItem::map_mem(fault_addr & !size_mask, backing, cache, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpage::MemRights;

    #[test]
    fn bit0_senses_differ_by_architecture() {
        // write to a present read-only page
        let x = PageFault::decode(Arch::Amd64, 0x40_1000 | 0b011, 0x40_0100);
        assert!(x.present && x.write && !x.exec);
        assert_eq!(x.addr, 0x40_1000);
        assert_eq!(x.ip, 0x40_0100);
        let a = PageFault::decode(Arch::Arm64, 0x40_1000 | 0b010, 0);
        assert!(a.present && a.write);
        // fetch from an unmapped page
        let x = PageFault::decode(Arch::Amd64, 0x40_2000 | 0b100, 0);
        assert!(!x.present && x.exec);
        let a = PageFault::decode(Arch::Arm64, 0x40_2000 | 0b101, 0);
        assert!(!a.present && a.exec);
    }

    #[test]
    fn encode_is_the_inverse() {
        for arch in [Arch::Amd64, Arch::Arm64] {
            for bits in 0..8u64 {
                let w = 0x7000_0000 | bits;
                assert_eq!(PageFault::decode(arch, w, 0).encode_mr0(arch), w);
            }
        }
    }

    #[test]
    fn resolve_puts_the_page_at_the_fault() {
        let it = resolve(0x40_1234, Fpage::mem(0x800_0000, 12, MemRights::RWX), Cache::Keep);
        assert_eq!(it.control, 0x40_1008);
        // a 2 MiB superpage lands at the 2 MiB boundary below the fault
        let it = resolve(0x40_1234, Fpage::mem(0x800_0000, 21, MemRights::RW), Cache::Cached);
        assert_eq!(it.control, 0x40_0000 | 0x38);
    }
}

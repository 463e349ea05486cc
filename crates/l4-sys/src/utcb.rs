//! The user-level thread control block: the thread's message registers,
//! buffer registers and thread control registers (1 KiB per thread).
//!
//! Layout from `l4sys/include/utcb.h` and `ARCH-amd64|arm64/arch/utcb.h`
//! (`L4_UTCB_GENERIC_DATA_SIZE` 63, `L4_UTCB_GENERIC_BUFFERS_SIZE` 58,
//! `L4_UTCB_OFFSET` 1024) and the kernel's `src/abi/l4_types.cpp` (`Utcb`).
//! Identical on amd64 and arm64.

/// Number of message registers.
pub const MR_COUNT: usize = 63;
/// Number of buffer registers.
pub const BR_COUNT: usize = 58;
/// Size of one UTCB (`L4_UTCB_OFFSET`); threads of a task use consecutive slots.
pub const UTCB_SIZE: u64 = 1024;

/// Byte offsets inside the UTCB.
pub mod offset {
    /// MR0.
    pub const MR: usize = 0x000;
    /// The kernel-written own address (amd64: GS base points here).
    pub const OWN_ADDR: usize = 0x1F8;
    /// Buffer descriptor.
    pub const BDR: usize = 0x200;
    /// BR0.
    pub const BR: usize = 0x208;
    /// TCR: IPC error code.
    pub const TCR_ERROR: usize = 0x3D8;
    /// TCR: free marker.
    pub const TCR_FREE_MARKER: usize = 0x3E0;
    /// TCR: user words 0..2 (kept by the kernel).
    pub const TCR_USER: usize = 0x3E8;
}

/// One thread's UTCB, as it lies in memory.
#[derive(Clone, PartialEq, Eq, Debug)]
#[repr(C, align(8))]
pub struct Utcb {
    /// Message registers MR0..MR62.
    pub mr: [u64; MR_COUNT],
    /// Word 63: the UTCB's own user address, written by the kernel (amd64 GS anchor).
    pub own_addr: u64,
    /// Buffer descriptor (see [`crate::item::Bdr`]).
    pub bdr: u64,
    /// Buffer registers BR0..BR57.
    pub br: [u64; BR_COUNT],
    /// TCR: error code of the last IPC (see [`crate::error::IpcError`]).
    pub tcr_error: u64,
    /// TCR: the kernel writes 0 here once no thread uses the UTCB.
    pub free_marker: u64,
    /// TCR: user words, preserved by the kernel.
    pub user: [u64; 3],
}

impl Utcb {
    /// An all-zero UTCB.
    pub const fn zeroed() -> Self {
        Utcb { mr: [0; MR_COUNT], own_addr: 0, bdr: 0, br: [0; BR_COUNT], tcr_error: 0, free_marker: 0, user: [0; 3] }
    }

    /// The UTCB as 128 words in memory order.
    pub fn to_words(&self) -> [u64; 128] {
        let mut w = [0u64; 128];
        w[..63].copy_from_slice(&self.mr);
        w[63] = self.own_addr;
        w[64] = self.bdr;
        w[65..123].copy_from_slice(&self.br);
        w[123] = self.tcr_error;
        w[124] = self.free_marker;
        w[125..128].copy_from_slice(&self.user);
        w
    }

    /// Builds a UTCB from 128 words in memory order.
    pub fn from_words(w: &[u64; 128]) -> Self {
        let mut u = Utcb::zeroed();
        u.mr.copy_from_slice(&w[..63]);
        u.own_addr = w[63];
        u.bdr = w[64];
        u.br.copy_from_slice(&w[65..123]);
        u.tcr_error = w[123];
        u.free_marker = w[124];
        u.user.copy_from_slice(&w[125..128]);
        u
    }

    /// Writes `words` into MR0.. . Fails (writing nothing) if they do not fit.
    pub fn set_mrs(&mut self, words: &[u64]) -> Result<(), crate::Error> {
        if words.len() > MR_COUNT {
            return Err(crate::Error::RequestTooLarge);
        }
        self.mr[..words.len()].copy_from_slice(words);
        Ok(())
    }
}

impl Default for Utcb {
    fn default() -> Self {
        Self::zeroed()
    }
}

const _: () = assert!(core::mem::size_of::<Utcb>() == UTCB_SIZE as usize);

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn layout_matches_the_header_offsets() {
        assert_eq!(core::mem::size_of::<Utcb>(), 1024);
        assert_eq!(offset_of!(Utcb, mr), offset::MR);
        assert_eq!(offset_of!(Utcb, own_addr), offset::OWN_ADDR);
        assert_eq!(offset_of!(Utcb, bdr), offset::BDR);
        assert_eq!(offset_of!(Utcb, br), offset::BR);
        assert_eq!(offset_of!(Utcb, tcr_error), offset::TCR_ERROR);
        assert_eq!(offset_of!(Utcb, free_marker), offset::TCR_FREE_MARKER);
        assert_eq!(offset_of!(Utcb, user), offset::TCR_USER);
    }

    #[test]
    fn words_round_trip() {
        let mut w = [0u64; 128];
        for (i, x) in w.iter_mut().enumerate() {
            *x = i as u64 * 3 + 1;
        }
        let u = Utcb::from_words(&w);
        assert_eq!(u.bdr, 64 * 3 + 1);
        assert_eq!(u.tcr_error, 123 * 3 + 1);
        assert_eq!(u.to_words(), w);
    }

    #[test]
    fn set_mrs_refuses_overflow() {
        let mut u = Utcb::zeroed();
        assert!(u.set_mrs(&[1, 2, 3]).is_ok());
        assert_eq!(&u.mr[..4], &[1, 2, 3, 0]);
        assert_eq!(u.set_mrs(&[0; 64]), Err(crate::Error::RequestTooLarge));
    }
}

//! Flexpages: a naturally aligned, power-of-two range of memory, I/O ports or
//! capability slots, with rights, in one word.
//!
//! Layout from `l4sys/include/__l4_fpage.h` and the kernel's
//! `src/abi/l4_fpage.cpp`: bits 0–3 rights, 4–5 type, 6–11 order (log2 of the
//! size), 12–63 address (memory), port << 12 (I/O) or cap index << 12 (object).

use crate::cap::CapIdx;

/// The type field, bits 4–5 (`L4_FPAGE_*` types).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FpageType {
    /// Special fpages (invalid, "all spaces").
    Special = 0,
    /// Memory (`L4_FPAGE_MEMORY`).
    Memory = 1,
    /// I/O ports (`L4_FPAGE_IO`).
    Io = 2,
    /// Capabilities (`L4_FPAGE_OBJ`).
    Obj = 3,
}

bitflags::bitflags! {
    /// Rights of a memory fpage (`L4_FPAGE_RO`… in `__l4_fpage.h`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct MemRights: u64 {
        /// Execute (`L4_FPAGE_X`).
        const X = 1;
        /// Write (`L4_FPAGE_W`).
        const W = 2;
        /// Read (`L4_FPAGE_R`).
        const R = 4;
        /// `L4_FPAGE_RX`.
        const RX = 5;
        /// `L4_FPAGE_RW`.
        const RW = 6;
        /// `L4_FPAGE_RWX`.
        const RWX = 7;
    }
}

bitflags::bitflags! {
    /// Rights of an object (capability) fpage (`L4_CAP_FPAGE_*`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct CapRights: u64 {
        /// Interface-specific write right (`L4_CAP_FPAGE_W`).
        const W = 1;
        /// "Special" right: server, bind, create, transfer (`L4_CAP_FPAGE_S`).
        const S = 2;
        /// Read: mandatory, without it nothing is mapped (`L4_CAP_FPAGE_R`).
        const R = 4;
        /// May delete the object (`L4_CAP_FPAGE_D`).
        const D = 8;
        /// `L4_CAP_FPAGE_RW`.
        const RW = 5;
        /// `L4_CAP_FPAGE_RS`.
        const RS = 6;
        /// `L4_CAP_FPAGE_RWS`.
        const RWS = 7;
        /// `L4_CAP_FPAGE_RWSD`.
        const RWSD = 0xF;
    }
}

/// `L4_WHOLE_ADDRESS_SPACE`: the order of "everything".
pub const WHOLE_ADDRESS_SPACE: u32 = 63;

/// A flexpage word (`l4_fpage_t`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
#[repr(transparent)]
pub struct Fpage(pub u64);

impl Fpage {
    /// The invalid fpage (`l4_fpage_invalid`).
    pub const INVALID: Fpage = Fpage(0);

    /// The "all spaces" fpage: special type, order 63 (`l4_fpage_all`).
    pub const ALL: Fpage = Fpage((WHOLE_ADDRESS_SPACE as u64) << 6);

    const fn raw(addr_field: u64, order: u32, ty: FpageType, rights: u64) -> Self {
        Fpage((addr_field & !0xfff) | ((order as u64 & 0x3f) << 6) | ((ty as u64) << 4) | (rights & 0xf))
    }

    /// A memory fpage (`l4_fpage(address, order, rights)`). The address is
    /// taken as given; the kernel ignores the bits below the order.
    pub const fn mem(addr: u64, order: u32, rights: MemRights) -> Self {
        Self::raw(addr, order, FpageType::Memory, rights.bits())
    }

    /// An object fpage of 2^order slots from `idx` (`l4_obj_fpage(sel, order, rights)`).
    pub const fn obj(idx: CapIdx, order: u32, rights: CapRights) -> Self {
        Self::raw(idx.sel(), order, FpageType::Obj, rights.bits())
    }

    /// An I/O-port fpage (`l4_iofpage(port, order)`), all rights.
    pub const fn io(port: u64, order: u32) -> Self {
        Self::raw(port << 12, order, FpageType::Io, 0xf)
    }

    /// Rights bits 0–3.
    pub const fn rights(self) -> u64 {
        self.0 & 0xf
    }

    /// Type field.
    pub const fn ty(self) -> FpageType {
        match (self.0 >> 4) & 3 {
            0 => FpageType::Special,
            1 => FpageType::Memory,
            2 => FpageType::Io,
            _ => FpageType::Obj,
        }
    }

    /// log2 of the size.
    pub const fn order(self) -> u32 {
        ((self.0 >> 6) & 0x3f) as u32
    }

    /// The address field (bits 12–63, i.e. the word with the low 12 bits cleared).
    /// For memory, the start address; for objects, the selector of the first slot.
    pub const fn addr(self) -> u64 {
        self.0 & !0xfff
    }

    /// First slot of an object fpage.
    pub const fn cap_idx(self) -> CapIdx {
        CapIdx::from_sel(self.0)
    }

    /// First port of an I/O fpage.
    pub const fn io_port(self) -> u64 {
        self.0 >> 12
    }

    /// Size in bytes (memory) or slots (objects) or ports (I/O); saturates at
    /// `u64::MAX` for order 64 and above.
    pub const fn size(self) -> u64 {
        let o = self.order();
        if o >= 64 {
            u64::MAX
        } else {
            1u64 << o
        }
    }

    /// The same fpage with other rights bits.
    pub const fn with_rights(self, rights: u64) -> Self {
        Fpage((self.0 & !0xf) | (rights & 0xf))
    }
}

impl core::fmt::Debug for Fpage {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Fpage{{{:?} addr: {:#x}, order: {}, rights: {:#x}}}",
            self.ty(),
            self.addr(),
            self.order(),
            self.rights()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values worked out from __l4_fpage.h: l4_fpage(addr, order, rights) =
    // addr | (order << 6) | (L4_FPAGE_MEMORY << 4) | rights.
    #[test]
    fn memory_fpage_layout() {
        let f = Fpage::mem(0x1234_5000, 12, MemRights::RWX);
        assert_eq!(f.0, 0x1234_5000 | (12 << 6) | (1 << 4) | 7);
        assert_eq!(f.0, 0x1234_5317);
        assert_eq!(f.ty(), FpageType::Memory);
        assert_eq!((f.order(), f.addr(), f.rights()), (12, 0x1234_5000, 7));
        assert_eq!(f.size(), 4096);
    }

    #[test]
    fn object_fpage_layout() {
        // l4_obj_fpage(0x4000, 0, L4_CAP_FPAGE_RWS) = 0x4000 | 0x30 | 7
        let f = Fpage::obj(CapIdx(4), 0, CapRights::RWS);
        assert_eq!(f.0, 0x4037);
        assert_eq!(f.cap_idx(), CapIdx(4));
        assert_eq!(f.ty(), FpageType::Obj);
    }

    #[test]
    fn special_fpages() {
        assert_eq!(Fpage::ALL.0, 0x0FC0);
        assert_eq!(Fpage::ALL.ty(), FpageType::Special);
        assert_eq!(Fpage::ALL.size(), 1 << 63);
        assert_eq!(Fpage::INVALID.0, 0);
    }

    #[test]
    fn io_fpage_layout() {
        // l4_iofpage(0x3f8, 3) = (0x3f8 << 12) | (3 << 6) | (2 << 4) | 0xf
        let f = Fpage::io(0x3f8, 3);
        assert_eq!(f.0, (0x3f8 << 12) | (3 << 6) | 0x20 | 0xf);
        assert_eq!(f.io_port(), 0x3f8);
        assert_eq!(f.ty(), FpageType::Io);
    }

    #[test]
    fn rights_constants() {
        assert_eq!(CapRights::RWSD.bits(), 0xF);
        assert_eq!(CapRights::RS.bits(), 6);
        assert_eq!(MemRights::RX.bits(), 5);
        assert_eq!(Fpage::mem(0, 12, MemRights::RW).with_rights(4).rights(), 4);
    }
}

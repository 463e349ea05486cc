//! `L4Re::Dataspace` (`l4re/include/dataspace`) and `L4Re::Mem_alloc::alloc`
//! (`l4re/include/mem_alloc`, a factory create with protocol
//! [`super::PROTO_DATASPACE`] on the allocator's capability).

/// The opcodes (index in `Dataspace`'s `Rpcs` list; an `int`).
pub mod op {
    /// `map(offset, spot, flags)`: a map item of the page.
    pub const MAP: u64 = 0;
    /// `clear(offset, size)`.
    pub const CLEAR: u64 = 1;
    /// `info()`: size and flags.
    pub const INFO: u64 = 2;
    /// `copy_in(dst_offset, src, src_offset, size)`, `src` as an item.
    pub const COPY_IN: u64 = 3;
    /// `allocate(offset, size)`.
    pub const ALLOCATE: u64 = 4;
    /// `map_info()`.
    pub const MAP_INFO: u64 = 5;
}

/// Dataspace flag: writable (`Dataspace::F::W`).
pub const W: u64 = 2;
/// Dataspace flags of read-write memory (`Dataspace::F::RWX`).
pub const RWX: u64 = 7;

/// `L4_VARG_TYPE_UMWORD`.
pub const VARG_UMWORD: u64 = 0x01;
/// `L4_VARG_TYPE_MWORD`.
pub const VARG_MWORD: u64 = 0x81;

/// A `Mem_alloc::alloc` request: the factory protocol's words (word 0
/// the object's protocol, then Varg pairs: header `type | 8 << 16`, value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alloc {
    /// Size in bytes (a signed word on the wire; must be positive).
    pub size: u64,
    /// `Mem_alloc` flags (Continuous 1, Pinned 2, Super_pages 4, Fixed_paddr 8).
    pub flags: u64,
    /// log2 of the alignment (0: the default).
    pub align: u64,
}

/// `Mem_alloc` flag `Fixed_paddr`: not for a supervised child.
pub const FIXED_PADDR: u64 = 8;

impl Alloc {
    /// Reads a factory create of a dataspace; `None` when word 0 is not
    /// [`super::PROTO_DATASPACE`] or the size is missing or not positive.
    pub fn decode(words: &[u64]) -> Option<Self> {
        if *words.first()? as i64 != super::PROTO_DATASPACE {
            return None;
        }
        let varg = |k: usize, ty: u64| -> Option<u64> {
            let (h, v) = (*words.get(1 + 2 * k)?, *words.get(2 + 2 * k)?);
            (h & 0xff == ty || (h & 0xff == VARG_UMWORD && ty == VARG_MWORD)).then_some(v)
        };
        let size = varg(0, VARG_MWORD)?;
        if size as i64 <= 0 {
            return None;
        }
        Some(Alloc { size, flags: varg(1, VARG_UMWORD).unwrap_or(0), align: varg(2, VARG_UMWORD).unwrap_or(0) })
    }

    /// The words a client sends.
    pub fn encode(&self) -> [u64; 7] {
        let h = |ty: u64| ty | 8 << 16;
        [
            super::PROTO_DATASPACE as u64,
            h(VARG_MWORD),
            self.size,
            h(VARG_UMWORD),
            self.flags,
            h(VARG_UMWORD),
            self.align,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alloc_reads_back_and_bad_ones_are_refused() {
        let a = Alloc { size: 0x2000, flags: 1, align: 12 };
        let w = a.encode();
        assert_eq!(w[1], 0x80081);
        assert_eq!(w[3], 0x80001);
        assert_eq!(Alloc::decode(&w), Some(a));
        // without flags and align
        assert_eq!(Alloc::decode(&w[..3]), Some(Alloc { size: 0x2000, flags: 0, align: 0 }));
        // no size, a negative size, another protocol
        assert_eq!(Alloc::decode(&w[..1]), None);
        let mut neg = w;
        neg[2] = (-5i64) as u64;
        assert_eq!(Alloc::decode(&neg), None);
        let mut other = w;
        other[0] = (-20i64) as u64;
        assert_eq!(Alloc::decode(&other), None);
    }
}

//! `L4Re::Rm`, the region map (`l4re/include/rm`): attach, detach, find,
//! areas; page faults arrive on the same gate (`L4_PROTO_PAGE_FAULT`).

/// Region flag: readable (`Rm::F::R`, = `L4_FPAGE_RO`).
pub const R: u64 = 4;
/// Region flag: writable (`Rm::F::W`).
pub const W: u64 = 2;
/// Region flag: executable (`Rm::F::X`).
pub const X: u64 = 1;
/// The rights bits of the region flags.
pub const RIGHTS_MASK: u64 = 0x0f;
/// Attach flag `Search_addr`.
pub const SEARCH_ADDR: u64 = 0x2_0000;
/// Attach flag `In_area`.
pub const IN_AREA: u64 = 0x4_0000;
/// Attach flag `Eager_map`.
pub const EAGER_MAP: u64 = 0x8_0000;
/// Region flag `Anonymous`: the region map provides the memory.
pub const ANONYMOUS: u64 = 0x2000;

/// Region flags for memory rights (X 1, W 2, R 4, as fpages have them).
pub const fn rights_to_region_flags(rights: u8) -> u64 {
    (rights as u64) & 7
}

/// Memory rights (X 1, W 2, R 4) of region flags.
pub const fn region_rights(flags: u64) -> u8 {
    (flags & 7) as u8
}

/// The opcodes (index in `Rm`'s `Rpcs` list).
pub mod op {
    /// `attach`.
    pub const ATTACH: u64 = 0;
    /// `detach`.
    pub const DETACH: u64 = 1;
    /// `find`.
    pub const FIND: u64 = 2;
    /// `reserve_area`.
    pub const RESERVE_AREA: u64 = 3;
    /// `free_area`.
    pub const FREE_AREA: u64 = 4;
    /// `get_regions`.
    pub const GET_REGIONS: u64 = 5;
    /// `get_areas`.
    pub const GET_AREAS: u64 = 6;
    /// `get_info`.
    pub const GET_INFO: u64 = 7;
}

pub use super::opcode;

/// `detach` result: the region was detached whole.
pub const DETACHED_DS: i64 = 0;
/// `detach` flag `Detach_exact`.
pub const DETACH_EXACT: u64 = 1;

/// An `attach` request (`l4re_rm_attach`, `L4Re::Rm::attach`). Words: op,
/// start, size, flags (u32), offset, align (u8), client's capability index
/// of the dataspace, the name (length word, bytes), backing offset; the
/// dataspace itself, if any, as a send item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attach {
    /// Where (or, with [`SEARCH_ADDR`], from where to search).
    pub start: u64,
    /// Size in bytes.
    pub size: u64,
    /// Region and attach flags.
    pub flags: u64,
    /// Offset into the dataspace.
    pub offset: u64,
    /// log2 of the alignment for a search.
    pub align: u8,
    /// The client's capability index of the dataspace (given back by `detach`).
    pub client_cap: u64,
    /// The region's name, for debugging (at most 32 bytes kept).
    pub name: [u8; 32],
}

/// The string argument at word `at`: (its bytes, the word after it).
fn string_at(words: &[u64], at: usize) -> Option<(alloc_free::Bytes, usize)> {
    let len = *words.get(at)? as usize;
    let n = len.div_ceil(8);
    let w = words.get(at + 1..at + 1 + n)?;
    let mut b = alloc_free::Bytes::default();
    for (i, x) in w.iter().flat_map(|x| x.to_le_bytes()).take(len).enumerate() {
        if i < b.0.len() {
            b.0[i] = x;
        }
    }
    b.1 = len.min(b.0.len());
    Some((b, at + 1 + n))
}

/// A short string without an allocator.
mod alloc_free {
    /// Up to 32 bytes and how many are used.
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Bytes(pub [u8; 32], pub usize);
}

impl Attach {
    /// Reads the words of an `attach` (word 0 the opcode).
    pub fn decode(words: &[u64]) -> Option<Self> {
        if opcode(words)? != op::ATTACH || words.len() < 8 {
            return None;
        }
        let (name, _) = string_at(words, 7)?;
        Some(Attach {
            start: words[1],
            size: words[2],
            flags: words[3] & 0xffff_ffff,
            offset: words[4],
            align: words[5] as u8,
            client_cap: words[6],
            name: name.0,
        })
    }

    /// The words a client sends (without the backing offset's name bytes
    /// beyond 8; the dataspace goes as an item).
    pub fn encode(&self, name: &[u8]) -> ([u64; 12], usize) {
        let mut w = [0u64; 12];
        w[0] = op::ATTACH;
        w[1] = self.start;
        w[2] = self.size;
        w[3] = self.flags & 0xffff_ffff;
        w[4] = self.offset;
        w[5] = self.align as u64;
        w[6] = self.client_cap;
        let name = &name[..name.len().min(24)];
        w[7] = name.len() as u64;
        for (i, b) in name.iter().enumerate() {
            w[8 + i / 8] |= (*b as u64) << (8 * (i % 8));
        }
        let n = 8 + name.len().div_ceil(8);
        w[n] = 0; // backing offset
        (w, n + 1)
    }
}

/// A `detach` request: words op, address, size, flags (u32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Detach {
    /// An address in the region.
    pub addr: u64,
    /// Size of the range.
    pub size: u64,
    /// Detach flags.
    pub flags: u64,
}

impl Detach {
    /// Reads the words of a `detach`.
    pub fn decode(words: &[u64]) -> Option<Self> {
        if opcode(words)? != op::DETACH || words.len() < 4 {
            return None;
        }
        Some(Detach { addr: words[1], size: words[2], flags: words[3] & 0xffff_ffff })
    }
}

/// A `reserve_area` request: words op, start, size, then flags (u32) and
/// align (u8) in one word (bytes 0–3 and 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReserveArea {
    /// Where, or from where to search.
    pub start: u64,
    /// Size.
    pub size: u64,
    /// Flags.
    pub flags: u64,
    /// log2 of the alignment.
    pub align: u8,
}

impl ReserveArea {
    /// Reads the words of a `reserve_area`.
    pub fn decode(words: &[u64]) -> Option<Self> {
        if opcode(words)? != op::RESERVE_AREA || words.len() < 4 {
            return None;
        }
        Some(ReserveArea {
            start: words[1],
            size: words[2],
            flags: words[3] & 0xffff_ffff,
            align: (words[3] >> 32) as u8,
        })
    }

    /// The words a client sends.
    pub fn encode(&self) -> [u64; 4] {
        [op::RESERVE_AREA, self.start, self.size, (self.flags & 0xffff_ffff) | (self.align as u64) << 32]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attach_as_l4re_sends_it() {
        // words seen from L4Re's TLS set-up on the kernel: op 0, start 0,
        // size 0x390, Search_addr|Anonymous|RW, offset 0, align 12, no
        // client cap, "[tls]" (6 bytes with the NUL), backing offset 0
        let w = [0, 0, 0x390, 0x23006, 0, 0xc, 0xffff_ffff_ffff_f800, 6, 0x5d_736c_745b, 0];
        let a = Attach::decode(&w).unwrap();
        assert_eq!((a.start, a.size, a.flags, a.offset, a.align), (0, 0x390, 0x23006, 0, 12));
        assert_eq!(a.flags & SEARCH_ADDR, SEARCH_ADDR);
        assert_eq!(a.flags & ANONYMOUS, ANONYMOUS);
        assert_eq!(region_rights(a.flags & RIGHTS_MASK), 6);
        assert_eq!(&a.name[..6], b"[tls]\0");
        let (e, n) = a.encode(b"[tls]\0");
        assert_eq!(&e[..n], &w);
        assert_eq!(Attach::decode(&w[..7]), None);
        assert_eq!(Attach::decode(&[1, 0, 0, 0, 0, 0, 0, 0]), None);
        // the opcode is an int: the upper half of word 0 is stale
        let mut stale = w;
        stale[0] = 0xdead_beef_0000_0000;
        assert_eq!(Attach::decode(&stale), Some(a.clone()));
        // a name longer than the words sent
        assert_eq!(Attach::decode(&[0, 0, 0, 0, 0, 0, 0, 100, 0]), None);
    }

    #[test]
    fn reserve_area_packs_flags_and_align_in_one_word() {
        let r = ReserveArea { start: 0x1000_0000, size: 0x10_0000, flags: SEARCH_ADDR, align: 20 };
        assert_eq!(ReserveArea::decode(&r.encode()), Some(r));
    }
}

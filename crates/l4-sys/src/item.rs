//! Typed message items: send items (map/grant), receive buffers and the
//! buffer descriptor, and the item words a receiver finds.
//!
//! From `l4sys/include/__l4_fpage.h` (`l4_map_control`, `l4_map_obj_control`,
//! `L4_fpage_cacheability_opt_t`, `L4_obj_fpage_ctl`), `l4sys/include/consts.h`
//! (`l4_msg_item_consts_t`, `l4_buffer_desc_consts_t`) and the kernel's
//! `src/abi/l4_msg_item.cpp`, `src/abi/l4_buf_desc.cpp`, `src/kern/l4_buf_iter.cpp`.

use crate::cap::CapIdx;
use crate::fpage::Fpage;

/// `L4_ITEM_MAP`: marks a send item or a generic receive buffer.
pub const ITEM_MAP: u64 = 0x8;
/// `L4_ITEM_CONT`: the next item goes into the same receive buffer.
pub const ITEM_CONT: u64 = 0x1;
/// `L4_MAP_ITEM_GRANT`: move instead of copy.
pub const MAP_ITEM_GRANT: u64 = 0x2;
/// `L4_RCV_ITEM_SINGLE_CAP`: a one-word buffer for one capability.
pub const RCV_ITEM_SINGLE_CAP: u64 = ITEM_MAP | 0x2;
/// `L4_RCV_ITEM_LOCAL_ID`: receive a local id instead of a mapping if possible.
pub const RCV_ITEM_LOCAL_ID: u64 = 0x4;
/// `L4_RCV_ITEM_FORWARD_MAPPINGS`: a generic buffer naming a destination task.
pub const RCV_ITEM_FORWARD_MAPPINGS: u64 = 0x1;

/// Memory caching attribute, bits 4–7 of the control word (`L4_FPAGE_*` cache
/// options shifted by 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Cache {
    /// Keep the sender's attributes (0x00).
    #[default]
    Keep = 0x00,
    /// Uncached (`L4_FPAGE_UNCACHEABLE << 4`).
    Uncached = 0x10,
    /// Cacheable (`L4_FPAGE_CACHEABLE << 4`).
    Cached = 0x30,
    /// Bufferable / write-combining (`L4_FPAGE_BUFFERABLE << 4`).
    Bufferable = 0x50,
}

bitflags::bitflags! {
    /// Object-mapping attributes, bits 4–7 of the control word (`L4_obj_fpage_ctl`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct ObjAttr: u64 {
        /// Weak, non-refcounting mapping (`L4_FPAGE_C_NO_REF_CNT`).
        const NO_REF_CNT = 0x10;
        /// IPC-gate server right (`L4_FPAGE_C_IPCGATE_SVR`); without it the
        /// receiver gets a client-only gate capability.
        const IPCGATE_SVR = 0x20;
        /// Object-specific right 2.
        const OBJ_RIGHT2 = 0x40;
        /// Object-specific right 3.
        const OBJ_RIGHT3 = 0x80;
        /// All object-specific rights (`L4_FPAGE_C_OBJ_RIGHTS`).
        const OBJ_RIGHTS = 0xE0;
    }
}

/// A send item: control word + fpage in the sender's space (two MRs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SendItem {
    /// Control word: hot spot (bits 12+), attributes (4–7), map bit, grant, cont.
    pub control: u64,
    /// The fpage sent, in the sender's space.
    pub fpage: Fpage,
}

impl SendItem {
    /// `l4_map_control(base, cache, grant)` + memory fpage.
    pub const fn map_mem(snd_base: u64, fpage: Fpage, cache: Cache, grant: bool) -> Self {
        SendItem {
            control: (snd_base & !0xfff) | cache as u64 | ITEM_MAP | if grant { MAP_ITEM_GRANT } else { 0 },
            fpage,
        }
    }

    /// `l4_map_obj_control(base, grant)` with attributes + object fpage.
    /// `dst` is where it lands in the receiver when the receive window is the
    /// whole space (the hot spot).
    pub const fn map_obj(dst: CapIdx, fpage: Fpage, attr: ObjAttr, grant: bool) -> Self {
        SendItem { control: dst.sel() | attr.bits() | ITEM_MAP | if grant { MAP_ITEM_GRANT } else { 0 }, fpage }
    }

    /// The capability argument of a kernel-object call: `MR[w] = 8`,
    /// `MR[w+1] = l4_obj_fpage(sel, 0, RWS)` (only the index counts; the
    /// kernel checks the caller's real rights).
    pub const fn cap_arg(idx: CapIdx) -> Self {
        SendItem { control: ITEM_MAP, fpage: Fpage::obj(idx, 0, crate::fpage::CapRights::RWS) }
    }

    /// The two words as they go into the MRs.
    pub const fn words(self) -> [u64; 2] {
        [self.control, self.fpage.0]
    }

    /// The send base / hot spot.
    pub const fn snd_base(self) -> u64 {
        self.control & !0xfff
    }
}

/// The buffer descriptor (BDR, UTCB word 64): where each kind of receive
/// buffer starts among the BRs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct Bdr(pub u64);

impl Bdr {
    /// `L4_BDR_MEM_SHIFT` etc.: first BR for memory (0–4), I/O (5–9), objects (10–14).
    pub const fn new(mem: u8, io: u8, obj: u8) -> Self {
        Bdr((mem as u64 & 0x1f) | ((io as u64 & 0x1f) << 5) | ((obj as u64 & 0x1f) << 10))
    }
    /// `L4_UTCB_INHERIT_FPU`: accept FPU state sent with TRANSFER_FPU.
    pub const INHERIT_FPU: u64 = 1 << 24;
    /// First BR for memory items.
    pub const fn mem(self) -> usize {
        (self.0 & 0x1f) as usize
    }
    /// First BR for I/O items.
    pub const fn io(self) -> usize {
        ((self.0 >> 5) & 0x1f) as usize
    }
    /// First BR for object items.
    pub const fn obj(self) -> usize {
        ((self.0 >> 10) & 0x1f) as usize
    }
    /// Does the receiver accept FPU state?
    pub const fn inherit_fpu(self) -> bool {
        self.0 & Self::INHERIT_FPU != 0
    }
}

/// A small receive buffer for one capability at `idx` (`idx << 12 | 0xA`).
pub const fn rcv_single_cap(idx: CapIdx) -> u64 {
    idx.sel() | RCV_ITEM_SINGLE_CAP
}

/// A small receive buffer that prefers a local id (`idx << 12 | 0xE`).
pub const fn rcv_single_cap_local_id(idx: CapIdx) -> u64 {
    idx.sel() | RCV_ITEM_SINGLE_CAP | RCV_ITEM_LOCAL_ID
}

/// What the receiver's item word says happened (bits 1–2 of the returned
/// control word, kernel `L4_return_item_writer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RcvKind {
    /// Something was mapped (0).
    Mapped,
    /// Nothing was mapped, e.g. already present (2).
    NothingMapped,
    /// A local id was delivered in the second word: `label | rights` (4).
    LocalId,
    /// A raw fpage was delivered in the second word (6).
    RawFpage,
}

/// An item as the receiver sees it in its MRs (`MR[words + 2k]`, `+1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RcvItem {
    /// The returned control word.
    pub control: u64,
    /// The second word (only meaningful for [`RcvKind::LocalId`] and [`RcvKind::RawFpage`]).
    pub data: u64,
}

impl RcvItem {
    /// Which case happened.
    pub const fn kind(self) -> RcvKind {
        match self.control & 6 {
            0 => RcvKind::Mapped,
            2 => RcvKind::NothingMapped,
            4 => RcvKind::LocalId,
            _ => RcvKind::RawFpage,
        }
    }
    /// The sender's hot spot.
    pub const fn snd_base(self) -> u64 {
        self.control & !0xfff
    }
    /// Type and order of the sent fpage (bits 4–11 as an fpage word).
    pub const fn sent_fpage_shape(self) -> Fpage {
        Fpage(self.control & 0xff0)
    }
    /// Did the sender set the continue flag?
    pub const fn cont(self) -> bool {
        self.control & ITEM_CONT != 0
    }
    /// Is the map bit set (not a void item)?
    pub const fn is_map(self) -> bool {
        self.control & ITEM_MAP != 0
    }
}

/// The receive window of the first memory buffer a receiver offers, from
/// its BDR and buffer registers (`l4_buf_regs_t`): the buffer at BR[BDR's
/// memory index] is a map item and the next BR its window; `None` when
/// there is none (an empty BR, or a single-capability buffer). A window of
/// [`Fpage::ALL`] is the whole address space.
pub fn memory_window(bdr: u64, br: &[u64]) -> Option<Fpage> {
    let at = Bdr(bdr).mem();
    let b0 = *br.get(at)?;
    if b0 == 0 || (b0 & 0xA == 0xA && b0 & 0xF != ITEM_MAP) {
        return None;
    }
    br.get(at + 1).map(|w| Fpage(*w))
}

/// Where a memory send item lands in the receiver: the hot-spot rule
/// (Fiasco `map_util.cpp`, `free_constraint`). `sent` is the send fpage,
/// `snd_base` the item's send base (hot spot), `window` the receive window
/// ([`memory_window`]). A send fpage no larger than the window lands at
/// `window + (hot spot mod window size)`, rounded down to its own size; a
/// larger one is cut down to the window's size around the hot spot.
/// Returns (the sender's address of what is mapped, the receiver's address,
/// log2 of the size), or `None` when the window takes no memory.
pub fn map_target(sent: Fpage, snd_base: u64, window: Fpage) -> Option<(u64, u64, u32)> {
    use crate::fpage::{FpageType, WHOLE_ADDRESS_SPACE};
    let mask = |o: u32| if o >= 63 { u64::MAX } else { (1u64 << o) - 1 };
    if sent.ty() != FpageType::Memory || sent.order() < 12 {
        return None;
    }
    let s_order = sent.order().min(WHOLE_ADDRESS_SPACE);
    let s_start = sent.addr() & !mask(s_order);
    let (w_start, w_order) = if window == Fpage::ALL {
        (0, WHOLE_ADDRESS_SPACE)
    } else if window.ty() == FpageType::Memory && window.order() >= 12 {
        (window.addr(), window.order().min(WHOLE_ADDRESS_SPACE))
    } else {
        return None;
    };
    let hot = snd_base;
    Some(if w_order >= s_order {
        let off = (hot & mask(w_order)) & !mask(s_order);
        (s_start, (w_start & !mask(w_order)) + off, s_order)
    } else {
        let off = (hot & mask(s_order)) & !mask(w_order);
        (s_start + off, w_start & !mask(w_order), w_order)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fpage::{CapRights, MemRights};

    #[test]
    fn control_words_match_l4_map_control() {
        // l4_map_control(0x4000_1234, L4_FPAGE_CACHEABLE, 0) = 0x4000_1000 | 0x30 | 8
        let it = SendItem::map_mem(0x4000_1234, Fpage::mem(0x20_0000, 12, MemRights::RW), Cache::Cached, false);
        assert_eq!(it.control, 0x4000_1038);
        assert_eq!(it.snd_base(), 0x4000_1000);
        let g = SendItem::map_mem(0, Fpage::INVALID, Cache::Keep, true);
        assert_eq!(g.control, 0xA);
    }

    #[test]
    fn object_items() {
        // map a gate to index 4 with the server right: (4 << 12) | 0x20 | 8
        let it = SendItem::map_obj(CapIdx(4), Fpage::obj(CapIdx(9), 0, CapRights::RWS), ObjAttr::IPCGATE_SVR, false);
        assert_eq!(it.control, 0x4028);
        assert_eq!(it.words(), [0x4028, 0x9037]);
        assert_eq!(SendItem::cap_arg(CapIdx(3)).words(), [8, 0x3037]);
    }

    #[test]
    fn receive_buffers() {
        assert_eq!(rcv_single_cap(CapIdx(0x10)), 0x1000A);
        assert_eq!(rcv_single_cap_local_id(CapIdx(0x10)), 0x1000E);
        let b = Bdr::new(1, 2, 3);
        assert_eq!(b.0, 1 | (2 << 5) | (3 << 10));
        assert_eq!((b.mem(), b.io(), b.obj()), (1, 2, 3));
        assert!(!b.inherit_fpu());
        assert!(Bdr(Bdr::INHERIT_FPU).inherit_fpu());
    }

    #[test]
    fn where_a_memory_item_lands() {
        let page = Fpage::mem(0x40_0000_0000, 12, MemRights::RWX);
        // the whole space: at the hot spot
        assert_eq!(map_target(page, 0x6000_0000, Fpage::ALL), Some((0x40_0000_0000, 0x6000_0000, 12)));
        // a one-page window: there, whatever the hot spot
        let w = Fpage::mem(0x0181_0000, 12, MemRights::empty());
        assert_eq!(map_target(page, 0x6000_0000, w), Some((0x40_0000_0000, 0x0181_0000, 12)));
        // a 64 KiB window: offset by the hot spot within it
        let w = Fpage::mem(0x0180_0000, 16, MemRights::empty());
        assert_eq!(map_target(page, 0x6000_3000, w), Some((0x40_0000_0000, 0x0180_3000, 12)));
        // 16 KiB sent into a 4 KiB window: the page around the hot spot
        let four = Fpage::mem(0x40_0001_0000, 14, MemRights::RWX);
        let w = Fpage::mem(0x0181_0000, 12, MemRights::empty());
        assert_eq!(map_target(four, 0x6000_2000, w), Some((0x40_0001_2000, 0x0181_0000, 12)));
        // a capability window takes no memory
        assert_eq!(map_target(page, 0, Fpage::obj(CapIdx(5), 0, CapRights::RWS)), None);
        // the buffer registers: BR0 map item, BR1 the window
        assert_eq!(memory_window(0, &[ITEM_MAP, w.0, 0]), Some(w));
        assert_eq!(memory_window(Bdr::new(1, 0, 0).0, &[0, ITEM_MAP, Fpage::ALL.0]), Some(Fpage::ALL));
        assert_eq!(memory_window(0, &[0, 0]), None);
        assert_eq!(memory_window(0, &[rcv_single_cap(CapIdx(9)), 0]), None);
    }

    #[test]
    fn received_item_kinds() {
        let it = RcvItem { control: 0x5000 | 0x8 | 0x4 | 0x30, data: 0x40 | 3 };
        assert_eq!(it.kind(), RcvKind::LocalId);
        assert_eq!(it.snd_base(), 0x5000);
        assert_eq!(it.sent_fpage_shape().0, 0x30);
        assert!(it.is_map());
        assert_eq!(RcvItem { control: 8, data: 0 }.kind(), RcvKind::Mapped);
        assert_eq!(RcvItem { control: 0xA, data: 0 }.kind(), RcvKind::NothingMapped);
        assert_eq!(RcvItem { control: 0xE, data: 0 }.kind(), RcvKind::RawFpage);
    }
}

//! The sigma0 protocol (label −6): how the root task gets the KIP and memory,
//! and what rtcr answers on a child's pager gate.
//!
//! From `l4sys/include/sigma0.h` and l4re-core's libsigma0 (`l4sigma0_map_kip`,
//! `l4sigma0_map_anypage`, `l4sigma0_map_mem`, `l4sigma0_map_iomem`); server
//! side in l4re-core `sigma0/server/src/memmap.cc`. Request codes are
//! `~0xFF | id`. The reply carries one map item; its control word's hot spot
//! (bits 12+) is the physical address sigma0 sent.

use crate::cap::{kind, Cap};
use crate::error::Error;
use crate::fpage::{Fpage, MemRights};
use crate::ipc::{self, expect};
use crate::item::ITEM_MAP;
use crate::kernel::Kernel;
use crate::msgtag::{MsgTag, Protocol};
use crate::timeout::TimeoutPair;

/// Request codes in MR0 (`SIGMA0_REQ_*`).
pub mod req {
    /// `SIGMA0_REQ_FPAGE_RAM`: a given RAM page.
    pub const FPAGE_RAM: u64 = 0xFFFF_FFFF_FFFF_FF60;
    /// `SIGMA0_REQ_FPAGE_IOMEM`: MMIO, uncached.
    pub const FPAGE_IOMEM: u64 = 0xFFFF_FFFF_FFFF_FF70;
    /// `SIGMA0_REQ_FPAGE_IOMEM_CACHED`: MMIO, cached.
    pub const FPAGE_IOMEM_CACHED: u64 = 0xFFFF_FFFF_FFFF_FF80;
    /// `SIGMA0_REQ_FPAGE_ANY`: any free RAM of a size.
    pub const FPAGE_ANY: u64 = 0xFFFF_FFFF_FFFF_FF90;
    /// `SIGMA0_REQ_KIP`.
    pub const KIP: u64 = 0xFFFF_FFFF_FFFF_FFA0;
    /// `SIGMA0_REQ_DEBUG_DUMP`.
    pub const DEBUG_DUMP: u64 = 0xFFFF_FFFF_FFFF_FFC0;
}

/// A request as sigma0 (or rtcr playing sigma0) receives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    /// The KIP.
    Kip,
    /// Any free RAM of 2^order bytes.
    AnyRam {
        /// log2 of the size.
        order: u32,
    },
    /// The RAM page(s) described by the fpage.
    Ram(Fpage),
    /// Device memory described by the fpage.
    IoMem {
        /// Physical range.
        fpage: Fpage,
        /// Cached or not.
        cached: bool,
    },
    /// Print sigma0's memory map.
    DebugDump,
}

impl Request {
    /// Decodes MR0/MR1 of a message with label −6 and `words` untyped words.
    /// `None` for anything that is not a sigma0 request.
    pub fn decode(words: usize, mr: &[u64]) -> Option<Self> {
        let w0 = *mr.first()?;
        let w1 = || if words >= 2 { mr.get(1).copied() } else { None };
        Some(match w0 & !0xF {
            req::KIP => Request::Kip,
            req::DEBUG_DUMP => Request::DebugDump,
            req::FPAGE_ANY => Request::AnyRam { order: Fpage(w1()?).order() },
            req::FPAGE_RAM => Request::Ram(Fpage(w1()?)),
            req::FPAGE_IOMEM => Request::IoMem { fpage: Fpage(w1()?), cached: false },
            req::FPAGE_IOMEM_CACHED => Request::IoMem { fpage: Fpage(w1()?), cached: true },
            _ => return None,
        })
    }

    /// The words a client sends (MR0, MR1) and how many.
    pub fn encode(&self) -> ([u64; 2], usize) {
        match *self {
            Request::Kip => ([req::KIP, 0], 1),
            Request::DebugDump => ([req::DEBUG_DUMP, 0], 1),
            Request::AnyRam { order } => ([req::FPAGE_ANY, Fpage::mem(0, order, MemRights::empty()).0], 2),
            Request::Ram(f) => ([req::FPAGE_RAM, f.0], 2),
            Request::IoMem { fpage, cached } => {
                ([if cached { req::FPAGE_IOMEM_CACHED } else { req::FPAGE_IOMEM }, fpage.0], 2)
            }
        }
    }
}

/// Sends a request to the pager gate, receiving the mapping into `window`;
/// returns the physical address sigma0 sent (the hot spot of the reply item).
pub fn request<K: Kernel>(k: &mut K, pager: Cap<kind::Sigma0>, r: Request, window: Fpage) -> Result<u64, Error> {
    request_item(k, pager, r, window).map(|(phys, _)| phys)
}

/// As [`request`], and also the fpage of the reply item: its order is the
/// size sigma0 sent (the kernel maps it into `window` in the largest pages
/// both sides' alignment allows).
pub fn request_item<K: Kernel>(
    k: &mut K,
    pager: Cap<kind::Sigma0>,
    r: Request,
    window: Fpage,
) -> Result<(u64, Fpage), Error> {
    let (w, n) = r.encode();
    let u = k.utcb();
    u.bdr = 0;
    u.br[0] = ITEM_MAP;
    u.br[1] = window.0;
    u.mr[..n].copy_from_slice(&w[..n]);
    let got = ipc::call(k, pager.idx(), MsgTag::proto(Protocol::Sigma0, n, 0), TimeoutPair::NEVER)?;
    let tcr = k.utcb().tcr_error;
    let tag = crate::error::check(got.tag, tcr)?;
    expect(tag, 0, 1)?;
    let at = tag.words();
    let u = k.utcb();
    // an item is two words; a reply that claims more words than the UTCB
    // holds leaves no room for its fpage word
    let fpage = u.mr.get(at + 1).copied().ok_or(Error::MalformedReply { tag })?;
    Ok((u.mr[at] & !0xFFF, Fpage(fpage)))
}

/// Maps the KIP into `window` (`l4sigma0_map_kip`); returns its physical address.
pub fn map_kip<K: Kernel>(k: &mut K, pager: Cap<kind::Sigma0>, window: Fpage) -> Result<u64, Error> {
    request(k, pager, Request::Kip, window)
}

/// Maps any free RAM of 2^order bytes into `window` (`l4sigma0_map_anypage`);
/// returns its physical address.
pub fn map_any<K: Kernel>(k: &mut K, pager: Cap<kind::Sigma0>, order: u32, window: Fpage) -> Result<u64, Error> {
    request(k, pager, Request::AnyRam { order }, window)
}

/// As [`map_any`], and also the fpage sigma0 sent (its order: the size).
pub fn map_any_item<K: Kernel>(
    k: &mut K,
    pager: Cap<kind::Sigma0>,
    order: u32,
    window: Fpage,
) -> Result<(u64, Fpage), Error> {
    request_item(k, pager, Request::AnyRam { order }, window)
}

/// Maps the RAM at `phys` (2^order bytes, aligned) into `window` (`l4sigma0_map_mem`).
pub fn map_ram<K: Kernel>(
    k: &mut K,
    pager: Cap<kind::Sigma0>,
    phys: u64,
    order: u32,
    window: Fpage,
) -> Result<u64, Error> {
    request(k, pager, Request::Ram(Fpage::mem(phys, order, MemRights::RWX)), window)
}

/// Maps device memory at `phys` into `window` (`l4sigma0_map_iomem`).
pub fn map_iomem<K: Kernel>(
    k: &mut K,
    pager: Cap<kind::Sigma0>,
    phys: u64,
    order: u32,
    cached: bool,
    window: Fpage,
) -> Result<u64, Error> {
    request(k, pager, Request::IoMem { fpage: Fpage::mem(phys, order, MemRights::RWX), cached }, window)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::CapIdx;
    use crate::fake::FakeKernel;

    const PAGER: Cap<kind::Sigma0> = Cap::new(CapIdx(4));

    #[test]
    fn kip_request_matches_libsigma0() {
        let mut k = FakeKernel::new();
        // reply: label 0, 0 words, 1 item whose hot spot is the KIP's address
        k.answer(MsgTag::new(0, 0, 1, Default::default()), 0, &[0x12_0000 | 8, 0]);
        let win = Fpage::mem(0x7000_0000, 12, MemRights::empty());
        assert_eq!(map_kip(&mut k, PAGER, win), Ok(0x12_0000));
        let e = k.last();
        assert_eq!(e.inv.tag.0, ((-6i64 as u64) << 16) | 1);
        assert_eq!(e.mrs(), &[0xFFFF_FFFF_FFFF_FFA0]);
        assert_eq!((e.utcb.bdr, e.utcb.br[0], e.utcb.br[1]), (0, 8, win.0));
    }

    #[test]
    fn any_and_ram_requests() {
        let mut k = FakeKernel::new();
        k.answer(MsgTag::new(0, 0, 1, Default::default()), 0, &[0x300_0000 | 8, 0]);
        assert_eq!(map_any(&mut k, PAGER, 21, Fpage::ALL), Ok(0x300_0000));
        assert_eq!(k.last().mrs(), &[0xFFFF_FFFF_FFFF_FF90, (21 << 6) | 0x10]);
        // the reply item's fpage says what size sigma0 sent
        let sent = Fpage::mem(0x300_0000, 21, MemRights::RWX);
        k.answer(MsgTag::new(0, 0, 1, Default::default()), 0, &[0x300_0000 | 8, sent.0]);
        assert_eq!(map_any_item(&mut k, PAGER, 21, Fpage::ALL), Ok((0x300_0000, sent)));
        k.answer(MsgTag::new(0, 0, 1, Default::default()), 0, &[0x400_0000 | 8, 0]);
        map_ram(&mut k, PAGER, 0x400_0000, 12, Fpage::ALL).unwrap();
        assert_eq!(k.last().mrs()[1], 0x400_0000 | (12 << 6) | 0x17);
    }

    #[test]
    fn refusals_and_empty_replies() {
        let mut k = FakeKernel::new();
        k.answer(MsgTag::new(-12, 0, 0, Default::default()), 0, &[]);
        assert_eq!(map_any(&mut k, PAGER, 30, Fpage::ALL), Err(Error::Kernel(crate::Errno::NoMem)));
        k.answer(MsgTag::new(0, 0, 0, Default::default()), 0, &[]);
        assert!(matches!(map_kip(&mut k, PAGER, Fpage::ALL), Err(Error::MalformedReply { .. })));
    }

    #[test]
    fn requests_round_trip() {
        for r in [
            Request::Kip,
            Request::DebugDump,
            Request::AnyRam { order: 16 },
            Request::Ram(Fpage::mem(0x1000, 12, MemRights::RWX)),
            Request::IoMem { fpage: Fpage::mem(0xfe00_0000, 12, MemRights::RW), cached: false },
            Request::IoMem { fpage: Fpage::mem(0xfe00_0000, 12, MemRights::RW), cached: true },
        ] {
            let (w, n) = r.encode();
            assert_eq!(Request::decode(n, &w[..n]), Some(r));
        }
        assert_eq!(Request::decode(1, &[0x1234]), None);
        // a RAM request without its fpage word is not a request
        assert_eq!(Request::decode(1, &[req::FPAGE_RAM]), None);
        assert_eq!(Request::decode(0, &[]), None);
    }
}

//! An L4Re child's region map as plain data: which address ranges show
//! which dataspace, which ranges are reserved as areas, and where a new
//! region may go. The Rm service ([`crate::l4re`]) answers the child's
//! `L4Re::Rm` calls with it and resolves page faults through it; the
//! checkpoint records it and a restore rebuilds it.
//!
//! Why a module of its own: the placement rules (search, areas, alignment,
//! the ranges rtcr keeps for itself) are where mistakes hide, and here they
//! are tested without a kernel.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

/// A region: `[start, start + size)` shows `ds` from `offset` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionRec {
    /// First address (page aligned).
    pub start: u64,
    /// Length (page multiple).
    pub size: u64,
    /// The region flags as the child gave them (rights and region flags,
    /// L4Re's `Rm::F` bits).
    pub flags: u64,
    /// The dataspace (index into the supervisor's dataspaces), if any.
    pub ds: Option<u32>,
    /// Offset into the dataspace.
    pub offset: u64,
    /// The child's capability index of the dataspace (`detach` gives it back).
    pub client_cap: u64,
}

impl RegionRec {
    /// One past the last address.
    pub fn end(&self) -> u64 {
        self.start + self.size
    }
}

/// An area reserved with `reserve_area`: only attaches that ask for it
/// (`In_area`) go into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AreaRec {
    /// First address.
    pub start: u64,
    /// Length.
    pub size: u64,
    /// The flags as the child gave them.
    pub flags: u64,
}

/// Why a placement failed (answered to the child as an error).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The range is taken, or no free range is large enough.
    NoRoom,
    /// Misaligned, empty, wraps, or outside the child's range.
    Invalid,
    /// No region or area starts there.
    NotFound,
}

/// The region map.
#[derive(Clone, Debug, Default)]
pub struct RegionMap {
    regions: BTreeMap<u64, RegionRec>,
    areas: BTreeMap<u64, AreaRec>,
    /// Ranges no region or area may touch (rtcr's trampoline and exchange
    /// pages, the UTCB area, the KIP), start and end.
    reserved: Vec<(u64, u64)>,
    /// Where regions may be (start, end).
    limit: (u64, u64),
}

const PAGE: u64 = 4096;

impl RegionMap {
    /// An empty map over `[limit.0, limit.1)` with `reserved` kept out.
    pub fn new(limit: (u64, u64), reserved: Vec<(u64, u64)>) -> Self {
        RegionMap { regions: BTreeMap::new(), areas: BTreeMap::new(), reserved, limit }
    }

    /// The regions, in address order.
    pub fn regions(&self) -> impl Iterator<Item = &RegionRec> {
        self.regions.values()
    }

    /// The areas, in address order.
    pub fn areas(&self) -> impl Iterator<Item = &AreaRec> {
        self.areas.values()
    }

    /// The region that holds `addr`.
    pub fn lookup(&self, addr: u64) -> Option<&RegionRec> {
        self.regions.range(..=addr).next_back().map(|(_, r)| r).filter(|r| addr < r.end())
    }

    /// The first region that overlaps `[addr, addr + size)`.
    pub fn find(&self, addr: u64, size: u64) -> Option<&RegionRec> {
        let end = addr.saturating_add(size.max(1));
        if let Some(r) = self.lookup(addr) {
            return Some(r);
        }
        self.regions.range(addr..end).next().map(|(_, r)| r)
    }

    fn area_at(&self, addr: u64) -> Option<&AreaRec> {
        self.areas.range(..=addr).next_back().map(|(_, a)| a).filter(|a| addr < a.start + a.size)
    }

    fn overlaps_region(&self, start: u64, end: u64) -> bool {
        self.find(start, end - start).is_some()
    }

    fn overlaps_area(&self, start: u64, end: u64) -> bool {
        self.area_at(start).is_some() || self.areas.range(start..end).next().is_some()
    }

    fn overlaps_reserved(&self, start: u64, end: u64) -> bool {
        self.reserved.iter().any(|&(s, e)| start < e && s < end)
    }

    /// Whether `[start, start + size)` may take a new region: free, inside
    /// the limit, and inside one area exactly when `in_area`.
    fn fits(&self, start: u64, size: u64, in_area: bool) -> bool {
        let Some(end) = start.checked_add(size) else { return false };
        if start < self.limit.0 || end > self.limit.1 || self.overlaps_reserved(start, end) {
            return false;
        }
        if self.overlaps_region(start, end) {
            return false;
        }
        if in_area {
            self.area_at(start).is_some_and(|a| end <= a.start + a.size)
        } else {
            !self.overlaps_area(start, end)
        }
    }

    /// Places `size` bytes: at `start` exactly, or (with `search`) at the
    /// lowest free address from `start` on that is aligned to
    /// `2^align` bytes (at least a page).
    fn place(&self, start: u64, size: u64, search: bool, align: u32, in_area: bool) -> Result<u64, Refused> {
        if size == 0 || !size.is_multiple_of(PAGE) || !start.is_multiple_of(PAGE) {
            return Err(Refused::Invalid);
        }
        if !search {
            return if self.fits(start, size, in_area) { Ok(start) } else { Err(Refused::NoRoom) };
        }
        let a = 1u64 << align.clamp(12, 40);
        let mut at = start.max(self.limit.0).checked_add(a - 1).ok_or(Refused::NoRoom)? & !(a - 1);
        // candidates: the aligned address, or just past whatever is in the way
        while at.checked_add(size).is_some_and(|e| e <= self.limit.1) {
            if self.fits(at, size, in_area) {
                return Ok(at);
            }
            let end = at + size;
            let mut next = at + a;
            if let Some(r) = self.find(at, size) {
                next = next.max(r.end());
            }
            for &(s, e) in &self.reserved {
                if at < e && s < end {
                    next = next.max(e);
                }
            }
            if !in_area {
                if let Some(ar) = self.area_at(at).or_else(|| self.areas.range(at..end).next().map(|(_, a)| a)) {
                    next = next.max(ar.start + ar.size);
                }
            }
            at = next.checked_add(a - 1).ok_or(Refused::NoRoom)? & !(a - 1);
        }
        Err(Refused::NoRoom)
    }

    /// Attaches a region (`L4Re::Rm::attach`); returns where it went.
    pub fn attach(&mut self, mut r: RegionRec, search: bool, align: u32, in_area: bool) -> Result<u64, Refused> {
        r.start = self.place(r.start, r.size, search, align, in_area)?;
        self.regions.insert(r.start, r);
        Ok(r.start)
    }

    /// Detaches the regions that overlap `[addr, addr + size)`, whole
    /// (`L4Re::Rm::detach` without splitting): returns them.
    pub fn detach(&mut self, addr: u64, size: u64) -> Vec<RegionRec> {
        let mut gone = Vec::new();
        while let Some(r) = self.find(addr, size).copied() {
            self.regions.remove(&r.start);
            gone.push(r);
        }
        gone
    }

    /// Reserves an area (`L4Re::Rm::reserve_area`); returns where.
    pub fn reserve_area(&mut self, mut a: AreaRec, search: bool, align: u32) -> Result<u64, Refused> {
        let size = (a.size + PAGE - 1) & !(PAGE - 1);
        a.start = self.place(a.start & !(PAGE - 1), size, search, align, false)?;
        a.size = size;
        self.areas.insert(a.start, a);
        Ok(a.start)
    }

    /// Frees the area that starts at `start` (`L4Re::Rm::free_area`); its
    /// regions stay.
    pub fn free_area(&mut self, start: u64) -> Result<(), Refused> {
        self.areas.remove(&start).map(|_| ()).ok_or(Refused::NotFound)
    }

    /// Puts back a region or area as recorded (restore): no search.
    pub fn insert_region(&mut self, r: RegionRec) -> Result<(), Refused> {
        if r.size == 0
            || !r.start.is_multiple_of(PAGE)
            || !r.size.is_multiple_of(PAGE)
            || self.overlaps_region(r.start, r.end())
        {
            return Err(Refused::Invalid);
        }
        self.regions.insert(r.start, r);
        Ok(())
    }

    /// Puts back an area as recorded (restore).
    pub fn insert_area(&mut self, a: AreaRec) -> Result<(), Refused> {
        if a.size == 0 || a.start.checked_add(a.size).is_none() || self.overlaps_area(a.start, a.start + a.size) {
            return Err(Refused::Invalid);
        }
        self.areas.insert(a.start, a);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map() -> RegionMap {
        RegionMap::new((0x1_0000, 0xc000_0000), alloc::vec![(0x7e00_0000, 0x7f00_1000), (0xb300_0000, 0xb310_0000)])
    }

    fn reg(start: u64, size: u64) -> RegionRec {
        RegionRec { start, size, flags: 0, ds: None, offset: 0, client_cap: 0 }
    }

    #[test]
    fn fixed_attaches_take_their_address_or_fail() {
        let mut m = map();
        assert_eq!(m.attach(reg(0x40_0000, 0x2000), false, 12, false), Ok(0x40_0000));
        assert_eq!(m.attach(reg(0x40_1000, 0x1000), false, 12, false), Err(Refused::NoRoom));
        assert_eq!(m.attach(reg(0x7e00_0000, 0x1000), false, 12, false), Err(Refused::NoRoom));
        assert_eq!(m.attach(reg(0x40_0800, 0x1000), false, 12, false), Err(Refused::Invalid));
        assert_eq!(m.attach(reg(0x40_2000, 0), false, 12, false), Err(Refused::Invalid));
        assert_eq!(m.lookup(0x40_1fff).map(|r| r.start), Some(0x40_0000));
        assert_eq!(m.lookup(0x40_2000), None);
    }

    #[test]
    fn a_search_skips_regions_areas_and_rtcrs_ranges_and_keeps_the_alignment() {
        let mut m = map();
        m.attach(reg(0x7d00_0000, 0x100_0000), false, 12, false).unwrap();
        m.reserve_area(AreaRec { start: 0x7f00_1000, size: 0x1000, flags: 0 }, false, 12).unwrap();
        // from 0x7d00_0000: the region, rtcr's range, the area are in the way
        let at = m.attach(reg(0x7d00_0000, 0x1_0000), true, 16, false).unwrap();
        assert_eq!(at, 0x7f01_0000);
        assert_eq!(at % 0x1_0000, 0);
        // into the area only when asked
        let inside = m.attach(reg(0x7f00_1000, 0x1000), true, 12, true).unwrap();
        assert_eq!(inside, 0x7f00_1000);
        assert_eq!(m.attach(reg(0x7f00_1000, 0x1000), true, 12, true), Err(Refused::NoRoom));
        // nothing fits past the limit
        assert_eq!(m.attach(reg(0xbfff_f000, 0x2000), true, 12, false), Err(Refused::NoRoom));
    }

    #[test]
    fn detach_takes_whole_regions_and_free_area_leaves_them() {
        let mut m = map();
        m.reserve_area(AreaRec { start: 0x100_0000, size: 0x10_0000, flags: 0 }, false, 12).unwrap();
        m.attach(reg(0x100_0000, 0x1000), false, 12, true).unwrap();
        m.attach(reg(0x100_2000, 0x2000), false, 12, true).unwrap();
        assert_eq!(m.free_area(0x100_1000), Err(Refused::NotFound));
        m.free_area(0x100_0000).unwrap();
        assert_eq!(m.regions().count(), 2);
        let gone = m.detach(0x100_0000, 0x3000);
        assert_eq!(gone.iter().map(|r| r.start).collect::<Vec<_>>(), [0x100_0000, 0x100_2000]);
        assert!(m.detach(0x100_0000, 0x3000).is_empty());
    }
}

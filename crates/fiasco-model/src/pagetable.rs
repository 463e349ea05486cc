//! A task's page table: virtual page number to [`Pte`], kept as the
//! hardware keeps it, a radix tree whose leaves cover 512 pages each (one
//! x86-64 / arm64 last-level table), instead of one ordered-map entry per
//! page. A lookup is one search among the few leaves and an index; pages
//! next to each other share a leaf, so a run of them (a restore writing or
//! mapping 4096 pages, an unmap walking them) stays in one place.
//!
//! The interface is the subset of `BTreeMap<u64, Pte>` the model uses, with
//! the same meaning (iteration in ascending page order); only the
//! representation differs. The same tree, over frame numbers, keeps
//! sigma0's record of which frame it gave to whom.

use std::collections::BTreeMap;
use std::ops::Range;

use crate::objects::Pte;

/// Pages per leaf (bits of the page number a leaf resolves).
const LEAF_BITS: u32 = 9;
const LEAF_PAGES: usize = 1 << LEAF_BITS;
const LEAF_MASK: u64 = LEAF_PAGES as u64 - 1;

struct Leaf<T> {
    entries: [Option<T>; LEAF_PAGES],
    /// Entries present (a leaf with none goes).
    used: u16,
}

impl<T: Copy> Leaf<T> {
    fn new() -> Box<Self> {
        Box::new(Leaf { entries: [None; LEAF_PAGES], used: 0 })
    }
}

/// Page (or frame) number to `T`.
pub(crate) struct Radix<T> {
    /// By page number >> `LEAF_BITS`.
    leaves: BTreeMap<u64, Box<Leaf<T>>>,
}

/// Virtual page number to page-table entry.
pub(crate) type PageTable = Radix<Pte>;

impl<T: Copy> Default for Radix<T> {
    fn default() -> Self {
        Radix { leaves: BTreeMap::new() }
    }
}

impl<T: Copy> Radix<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, vpn: &u64) -> Option<&T> {
        self.leaves.get(&(vpn >> LEAF_BITS))?.entries[(vpn & LEAF_MASK) as usize].as_ref()
    }

    pub fn get_mut(&mut self, vpn: &u64) -> Option<&mut T> {
        self.leaves.get_mut(&(vpn >> LEAF_BITS))?.entries[(vpn & LEAF_MASK) as usize].as_mut()
    }

    pub fn contains_key(&self, vpn: &u64) -> bool {
        self.get(vpn).is_some()
    }

    /// Puts `pte` at `vpn`; what was there.
    pub fn insert(&mut self, vpn: u64, pte: T) -> Option<T> {
        let leaf = self.leaves.entry(vpn >> LEAF_BITS).or_insert_with(Leaf::new);
        let old = leaf.entries[(vpn & LEAF_MASK) as usize].replace(pte);
        if old.is_none() {
            leaf.used += 1;
        }
        old
    }

    /// Takes the entry at `vpn` out.
    pub fn remove(&mut self, vpn: &u64) -> Option<T> {
        let key = vpn >> LEAF_BITS;
        let leaf = self.leaves.get_mut(&key)?;
        let old = leaf.entries[(vpn & LEAF_MASK) as usize].take()?;
        leaf.used -= 1;
        if leaf.used == 0 {
            self.leaves.remove(&key);
        }
        Some(old)
    }

    /// Every entry, in ascending page order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> + '_ {
        self.leaves.iter().flat_map(|(&k, leaf)| {
            leaf.entries.iter().enumerate().filter_map(move |(i, e)| Some(((k << LEAF_BITS) | i as u64, e.as_ref()?)))
        })
    }

    /// Every page number, ascending.
    pub fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.iter().map(|(v, _)| v)
    }

    /// The entries with page numbers in `r`, ascending.
    pub fn range(&self, r: Range<u64>) -> impl Iterator<Item = (u64, &T)> + '_ {
        let (lo, hi) = (r.start, r.end);
        let keys = if lo < hi { (lo >> LEAF_BITS)..((hi - 1) >> LEAF_BITS) + 1 } else { 0..0 };
        self.leaves.range(keys).flat_map(move |(&k, leaf)| {
            let base = k << LEAF_BITS;
            let (a, b) = span(base, lo, hi);
            leaf.entries[a..b].iter().enumerate().filter_map(move |(i, e)| Some((base + (a + i) as u64, e.as_ref()?)))
        })
    }

    /// The entries with page numbers in `r`, ascending, to change in place.
    pub fn range_mut(&mut self, r: Range<u64>) -> impl Iterator<Item = (u64, &mut T)> + '_ {
        let (lo, hi) = (r.start, r.end);
        let keys = if lo < hi { (lo >> LEAF_BITS)..((hi - 1) >> LEAF_BITS) + 1 } else { 0..0 };
        self.leaves.range_mut(keys).flat_map(move |(&k, leaf)| {
            let base = k << LEAF_BITS;
            let (a, b) = span(base, lo, hi);
            leaf.entries[a..b]
                .iter_mut()
                .enumerate()
                .filter_map(move |(i, e)| Some((base + (a + i) as u64, e.as_mut()?)))
        })
    }
}

/// The slots of the leaf at `base` that `[lo, hi)` covers (the leaf is one
/// the range reaches).
fn span(base: u64, lo: u64, hi: u64) -> (usize, usize) {
    let a = lo.saturating_sub(base).min(LEAF_PAGES as u64) as usize;
    let b = (hi - base).min(LEAF_PAGES as u64) as usize;
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapdb::NodeId;

    fn pte(frame: u64) -> Pte {
        Pte { frame, rights: 7, referenced: false, dirty: false, node: NodeId(frame), derived: false }
    }

    /// Against the ordered map it stands for: the same answers for a mix
    /// of inserts, removals and ranges across leaf boundaries.
    #[test]
    fn agrees_with_an_ordered_map() {
        let mut t: PageTable = Radix::new();
        let mut m: BTreeMap<u64, Pte> = BTreeMap::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let r = next();
            // clustered around leaf edges, with some far away
            let vpn = match r % 4 {
                0 => 511 + (r >> 8) % 4,
                1 => 1024 + (r >> 8) % 1500,
                2 => (r >> 8) % 64,
                _ => u64::MAX / 4096 - (r >> 8) % 3,
            };
            match (r >> 40) % 3 {
                0 | 1 => assert_eq!(t.insert(vpn, pte(r)), m.insert(vpn, pte(r))),
                _ => assert_eq!(t.remove(&vpn), m.remove(&vpn)),
            }
            assert_eq!(t.get(&vpn), m.get(&vpn));
            assert_eq!(t.contains_key(&(vpn ^ 1)), m.contains_key(&(vpn ^ 1)));
        }
        assert!(t.iter().map(|(v, p)| (v, *p)).eq(m.iter().map(|(v, p)| (*v, *p))));
        assert!(t.keys().eq(m.keys().copied()));
        for (lo, hi) in [(0, 0), (3, 3), (0, 10), (500, 1030), (511, 512), (512, 513), (1000, 4000), (0, u64::MAX)] {
            assert!(t.range(lo..hi).map(|(v, p)| (v, *p)).eq(m.range(lo..hi).map(|(v, p)| (*v, *p))), "{lo}..{hi}");
        }
        for (_, p) in t.range_mut(500..1100) {
            p.rights = 1;
        }
        for (_, p) in m.range_mut(500..1100) {
            p.rights = 1;
        }
        assert!(t.iter().map(|(v, p)| (v, *p)).eq(m.iter().map(|(v, p)| (*v, *p))));
        // every entry removed: no leaf left behind
        for v in m.keys() {
            t.remove(v);
        }
        assert!(t.leaves.is_empty());
    }
}

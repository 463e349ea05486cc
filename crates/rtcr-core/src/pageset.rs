//! A set of page numbers kept as runs of neighbouring pages: the pages a
//! child wrote since the last checkpoint. The cut write-protects one fpage
//! per naturally aligned block of a run, so it walks runs, not pages;
//! adding a page (at a write fault, while the child runs) joins it to its
//! neighbours.

use alloc::collections::BTreeMap;

/// Page numbers as runs (first page → length).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageSet {
    runs: BTreeMap<u64, u64>,
    pages: usize,
}

impl PageSet {
    /// An empty set.
    pub const fn new() -> Self {
        PageSet { runs: BTreeMap::new(), pages: 0 }
    }

    /// Adds page `vpn`; false if it was there.
    pub fn insert(&mut self, vpn: u64) -> bool {
        let before = self.runs.range(..=vpn).next_back().map(|(&s, &n)| (s, n));
        if let Some((s, n)) = before {
            if vpn < s + n {
                return false;
            }
        }
        let after = vpn.checked_add(1).and_then(|next| self.runs.get(&next).copied());
        match (before, after) {
            // joins the run before it and the one after it
            (Some((s, n)), Some(m)) if s + n == vpn => {
                self.runs.remove(&(vpn + 1));
                self.runs.insert(s, n + 1 + m);
            }
            (Some((s, n)), _) if s + n == vpn => {
                self.runs.insert(s, n + 1);
            }
            (_, Some(m)) => {
                self.runs.remove(&(vpn + 1));
                self.runs.insert(vpn, m + 1);
            }
            _ => {
                self.runs.insert(vpn, 1);
            }
        }
        self.pages += 1;
        true
    }

    /// Takes page `vpn` out (a detached region's page); false if it was
    /// not there. A run it was inside splits in two.
    pub fn remove(&mut self, vpn: u64) -> bool {
        let Some((s, n)) = self.runs.range(..=vpn).next_back().map(|(&s, &n)| (s, n)) else { return false };
        if vpn >= s + n {
            return false;
        }
        self.runs.remove(&s);
        if vpn > s {
            self.runs.insert(s, vpn - s);
        }
        if vpn + 1 < s + n {
            self.runs.insert(vpn + 1, s + n - vpn - 1);
        }
        self.pages -= 1;
        true
    }

    /// Is page `vpn` in the set?
    pub fn contains(&self, vpn: u64) -> bool {
        self.runs.range(..=vpn).next_back().is_some_and(|(&s, &n)| vpn < s + n)
    }

    /// How many pages.
    pub fn len(&self) -> usize {
        self.pages
    }

    /// No page at all?
    pub fn is_empty(&self) -> bool {
        self.pages == 0
    }

    /// The runs, lowest first: (first page, pages).
    pub fn runs(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.runs.iter().map(|(&s, &n)| (s, n))
    }

    /// The pages, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = u64> + '_ {
        self.runs().flat_map(|(s, n)| s..s + n)
    }
}

#[cfg(test)]
mod tests {
    use super::PageSet;

    #[test]
    fn a_page_taken_out_of_a_run_splits_it() {
        let mut p = PageSet::new();
        for v in 10..15 {
            p.insert(v);
        }
        assert!(p.remove(12));
        assert!(!p.remove(12));
        assert!(!p.remove(99));
        assert_eq!(p.runs().collect::<Vec<_>>(), [(10, 2), (13, 2)]);
        assert!(p.remove(10) && p.remove(14));
        assert_eq!(p.runs().collect::<Vec<_>>(), [(11, 1), (13, 1)]);
        assert_eq!(p.len(), 2);
        assert!(!p.contains(12) && p.contains(13));
    }
    use alloc::vec::Vec;

    #[test]
    fn pages_join_into_runs_in_any_order() {
        let mut s = PageSet::new();
        assert!(s.is_empty());
        for vpn in [5u64, 7, 3, 6, 4, 10, 4] {
            s.insert(vpn);
        }
        assert_eq!(s.runs().collect::<Vec<_>>(), [(3, 5), (10, 1)], "3..=7 joined from both sides, 4 twice");
        assert_eq!(s.len(), 6);
        assert_eq!(s.iter().collect::<Vec<_>>(), [3, 4, 5, 6, 7, 10]);
        assert!(s.contains(3) && s.contains(7) && s.contains(10));
        assert!(!s.contains(2) && !s.contains(8) && !s.contains(9) && !s.contains(11));
        assert!(!s.insert(5), "already there");
        assert!(s.insert(9) && s.insert(8));
        assert_eq!(s.runs().collect::<Vec<_>>(), [(3, 8)]);
        assert!(s.insert(u64::MAX) && s.insert(0));
        assert_eq!(s.runs().collect::<Vec<_>>(), [(0, 1), (3, 8), (u64::MAX, 1)]);
    }

    #[test]
    fn a_set_built_page_by_page_is_its_pages() {
        // a pseudo-random order over 0..300 with gaps, against a plain set
        let mut s = PageSet::new();
        let mut plain = alloc::collections::BTreeSet::new();
        let mut x = 7u64;
        for _ in 0..600 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let vpn = (x >> 33) % 300;
            if vpn % 7 != 3 {
                assert_eq!(s.insert(vpn), plain.insert(vpn));
            }
        }
        assert_eq!(s.iter().collect::<Vec<_>>(), plain.iter().copied().collect::<Vec<_>>());
        assert_eq!(s.len(), plain.len());
        // runs are maximal: no two touch
        let runs: Vec<(u64, u64)> = s.runs().collect();
        assert!(runs.windows(2).all(|w| w[0].0 + w[0].1 < w[1].0), "{runs:?}");
    }
}

//! Physical memory: the frames behind every mapping.
//!
//! RAM is one arena, there from boot as a machine's RAM is, indexed by
//! frame number: a frame is an offset into it, not a boxed page found
//! through an ordered map. The host memory behind it is taken in blocks of
//! 2 MiB as they are first touched (the arena of a 1 GiB model costs
//! nothing until used) and reads as zeros before anything is written, as
//! the frames of the map it replaces did. Frames outside RAM (the KIP, I/O
//! memory) keep a page of their own each.

use std::collections::BTreeMap;

/// Frames per block of host memory (2 MiB).
const BLOCK_FRAMES: u64 = 512;

type Frame = [u8; 4096];

pub(crate) struct PhysMem {
    /// RAM's first frame and its number of frames.
    first: u64,
    count: u64,
    /// RAM by block, allocated on first use.
    blocks: Vec<Option<Box<[Frame]>>>,
    /// Frames outside RAM.
    other: BTreeMap<u64, Box<Frame>>,
}

impl PhysMem {
    /// RAM `[base, base + size)` (bytes).
    pub fn new((base, size): (u64, u64)) -> Self {
        let first = base.div_ceil(4096);
        let count = ((base + size) >> 12).saturating_sub(first);
        let blocks = (0..count.div_ceil(BLOCK_FRAMES)).map(|_| None).collect();
        PhysMem { first, count, blocks, other: BTreeMap::new() }
    }

    /// The block and the index in it of a RAM frame.
    fn place(&self, pfn: u64) -> Option<(usize, usize)> {
        let i = pfn.checked_sub(self.first).filter(|&i| i < self.count)?;
        Some(((i / BLOCK_FRAMES) as usize, (i % BLOCK_FRAMES) as usize))
    }

    /// Frame `pfn`'s contents, to write (zeros if never written).
    pub fn frame(&mut self, pfn: u64) -> &mut Frame {
        match self.place(pfn) {
            Some((b, i)) => {
                let len = (self.count - b as u64 * BLOCK_FRAMES).min(BLOCK_FRAMES) as usize;
                // zeroed host memory, not touched until written
                &mut self.blocks[b].get_or_insert_with(|| vec![[0u8; 4096]; len].into_boxed_slice())[i]
            }
            None => self.other.entry(pfn).or_insert_with(|| Box::new([0u8; 4096])),
        }
    }

    /// Frame `pfn`'s contents, if it was ever written (`None` reads as zeros).
    pub fn frame_ro(&self, pfn: u64) -> Option<&Frame> {
        match self.place(pfn) {
            Some((b, i)) => self.blocks[b].as_ref().map(|blk| &blk[i]),
            None => self.other.get(&pfn).map(|f| &**f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_inside_and_outside_ram_keep_their_bytes() {
        // RAM of 1027 frames from frame 0x100: three blocks, the last partial
        let mut m = PhysMem::new((0x10_0000, 1027 * 4096));
        assert_eq!(m.blocks.len(), 3);
        for pfn in [0x100u64, 0x100 + 511, 0x100 + 512, 0x100 + 1026, 0xff, 0x100 + 1027, 1 << 40] {
            assert!(m.frame_ro(pfn).is_none_or(|f| f.iter().all(|&b| b == 0)), "{pfn:#x}");
            m.frame(pfn)[7] = pfn as u8 ^ 0x5a;
        }
        for pfn in [0x100u64, 0x100 + 511, 0x100 + 512, 0x100 + 1026, 0xff, 0x100 + 1027, 1 << 40] {
            let f = m.frame_ro(pfn).unwrap();
            assert_eq!((f[7], f[6], f[8]), (pfn as u8 ^ 0x5a, 0, 0), "{pfn:#x}");
        }
        assert_eq!(m.other.len(), 3);
        // a frame never written next to written ones reads as zeros
        assert!(m.frame_ro(0x101).unwrap().iter().all(|&b| b == 0));
    }
}

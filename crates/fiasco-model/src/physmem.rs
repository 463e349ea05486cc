//! Physical memory: the frames behind every mapping.
//!
//! RAM is one arena, there from boot as a machine's RAM is, indexed by
//! frame number: a frame is an offset into it, not a boxed page found
//! through an ordered map. The host memory behind it is taken in blocks of
//! 2 MiB as they are first touched (the arena of a 1 GiB model costs
//! nothing until used). A frame reads as zeros until something is written
//! into it, as the frames of the map it replaces did: each block keeps a
//! bit per frame saying whether it was written, so a block's host memory
//! need not be cleared beforehand. That lets a model take the blocks a
//! model dropped earlier in the process left (a small pool, bounded),
//! memory the host has already given the process, instead of fresh host
//! memory that faults page by page on first touch: the host's cost, not
//! the machine's (a machine's RAM is there before a restore). Nothing of
//! another model's frames can show: a frame not written by this model
//! reads as zeros, and is cleared when first written in part. Frames
//! outside RAM (the KIP, I/O memory) keep a page of their own each.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Frames per block of host memory (2 MiB).
const BLOCK_FRAMES: u64 = 512;

/// Blocks kept for the next model, at most (128 MiB).
const POOL_BLOCKS: usize = 64;

type Frame = [u8; 4096];

/// Host memory of dropped models, for the next ones (contents stale: a
/// block's written bits start clear).
static POOL: Mutex<Vec<Box<[Frame]>>> = Mutex::new(Vec::new());

struct Block {
    frames: Box<[Frame]>,
    /// Bit per frame: written by this model (else it reads as zeros).
    written: [u64; BLOCK_FRAMES as usize / 64],
}

impl Block {
    fn new() -> Box<Self> {
        let frames = POOL
            .lock()
            .ok()
            .and_then(|mut p| p.pop())
            .unwrap_or_else(|| vec![[0u8; 4096]; BLOCK_FRAMES as usize].into_boxed_slice());
        Box::new(Block { frames, written: [0; BLOCK_FRAMES as usize / 64] })
    }

    fn is_written(&self, i: usize) -> bool {
        self.written[i / 64] & (1 << (i % 64)) != 0
    }

    /// Frame `i`, to be written; cleared first if it was never written
    /// and `whole` (the caller overwrites all of it) is not set.
    fn frame_mut(&mut self, i: usize, whole: bool) -> &mut Frame {
        if !self.is_written(i) {
            self.written[i / 64] |= 1 << (i % 64);
            if !whole {
                self.frames[i].fill(0);
            }
        }
        &mut self.frames[i]
    }
}

pub(crate) struct PhysMem {
    /// RAM's first frame and its number of frames.
    first: u64,
    count: u64,
    /// RAM by block, allocated on first use.
    blocks: Vec<Option<Box<Block>>>,
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

    fn frame_mut(&mut self, pfn: u64, whole: bool) -> &mut Frame {
        match self.place(pfn) {
            Some((b, i)) => self.blocks[b].get_or_insert_with(Block::new).frame_mut(i, whole),
            None => self.other.entry(pfn).or_insert_with(|| Box::new([0u8; 4096])),
        }
    }

    /// Frame `pfn`'s contents, to write (zeros if never written).
    pub fn frame(&mut self, pfn: u64) -> &mut Frame {
        self.frame_mut(pfn, false)
    }

    /// Frame `pfn`, for a caller that writes all 4096 bytes of it: what it
    /// held before may show until then (stale bytes if never written).
    pub fn frame_to_overwrite(&mut self, pfn: u64) -> &mut Frame {
        self.frame_mut(pfn, true)
    }

    /// Frame `pfn`'s contents, if it was ever written (`None` reads as zeros).
    pub fn frame_ro(&self, pfn: u64) -> Option<&Frame> {
        match self.place(pfn) {
            Some((b, i)) => self.blocks[b].as_ref().filter(|blk| blk.is_written(i)).map(|blk| &blk.frames[i]),
            None => self.other.get(&pfn).map(|f| &**f),
        }
    }
}

impl Drop for PhysMem {
    /// The host memory goes to the pool for the next model (as far as it
    /// has room), the rest back to the host.
    fn drop(&mut self) {
        if let Ok(mut pool) = POOL.lock() {
            for b in self.blocks.iter_mut().filter_map(Option::take) {
                if pool.len() >= POOL_BLOCKS {
                    break;
                }
                pool.push(b.frames);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PFNS: [u64; 7] = [0x100, 0x100 + 511, 0x100 + 512, 0x100 + 1026, 0xff, 0x100 + 1027, 1 << 40];

    #[test]
    fn frames_inside_and_outside_ram_keep_their_bytes() {
        // RAM of 1027 frames from frame 0x100: three blocks, the last partial
        let mut m = PhysMem::new((0x10_0000, 1027 * 4096));
        assert_eq!(m.blocks.len(), 3);
        for pfn in PFNS {
            assert!(m.frame_ro(pfn).is_none(), "{pfn:#x}");
            m.frame(pfn)[7] = pfn as u8 ^ 0x5a;
        }
        for pfn in PFNS {
            let f = m.frame_ro(pfn).unwrap();
            assert_eq!((f[7], f[6], f[8]), (pfn as u8 ^ 0x5a, 0, 0), "{pfn:#x}");
        }
        assert_eq!(m.other.len(), 3);
        // a frame never written next to written ones reads as zeros
        assert!(m.frame_ro(0x101).is_none());
        m.frame_to_overwrite(0x101).fill(0xee);
        assert!(m.frame_ro(0x101).unwrap().iter().all(|&b| b == 0xee));
    }

    /// A model taking the host memory another left sees none of its bytes.
    #[test]
    fn a_new_model_sees_nothing_of_a_dropped_ones_frames() {
        for round in 0..3u8 {
            let mut m = PhysMem::new((0, 4 * 512 * 4096));
            for pfn in 0..4 * 512 {
                assert!(m.frame_ro(pfn).is_none(), "round {round}, {pfn:#x}");
            }
            for pfn in (0..4 * 512).step_by(7) {
                // partly written: the rest of the frame reads as zeros
                let f = m.frame(pfn);
                assert!(f.iter().all(|&b| b == 0), "round {round}, {pfn:#x}");
                f[100] = 0xa5;
                m.frame_to_overwrite(pfn + 1).fill(0x3c);
            }
        }
    }
}

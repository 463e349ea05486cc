//! Checkpoints, raw image assembly and a PRNG shared by the image tests.
//!
//! `seal` writes the header by hand from the documented layout (not through
//! the crate), so the tests also pin the format, and so they can build images
//! that `encode` would refuse (inconsistent records, hostile bodies).

#![allow(dead_code)]

use rtcr_image::checksum::Algo;
use rtcr_image::crc::crc64;
use rtcr_image::{
    Arch, CapRecord, Checkpoint, ImageMeta, ObjectRecord, PageRecord, Placement, Service, ThreadRecord, ThreadState,
};

/// SplitMix64: small, deterministic, good enough to pick bytes and positions.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

pub fn meta(arch: Arch, page_shift: u8, sequence: u64) -> ImageMeta {
    ImageMeta { arch, page_shift, sequence, clock_us: 1_000_000 + sequence }
}

fn thread(arch: Arch, n: u64, utcb: u64, state: ThreadState) -> ThreadRecord {
    let mut regs: Vec<u64> = (0..arch.regs_len() as u64).map(|i| i * 0x1111 + n).collect();
    regs[arch.ip_index()] = 0x40_1000 + n * 0x10;
    regs[arch.sp_index()] = 0x7fff_f000 - n * 0x1000;
    ThreadRecord {
        utcb,
        prio: 10 + n as u8,
        quantum_us: if n == 0 { 0 } else { 10_000 },
        pager_slot: 4,
        exc_slot: 4,
        regs,
        utcb_words: (0..128u64).map(|i| i.wrapping_mul(0x0101_0101) ^ n).collect(),
        state,
        fpu: (0..512u32).map(|i| (i as u8) ^ n as u8).collect(),
        timeouts: vec![(2, 1000 + n)],
    }
}

fn page(vaddr: u64, page_shift: u8, seed: u8) -> PageRecord {
    let size = 1usize << page_shift;
    PageRecord {
        vaddr,
        rights: if vaddr < 0x50_0000 { 5 } else { 6 },
        data: (0..size).map(|i| (i as u8).wrapping_mul(seed) ^ seed).collect(),
    }
}

/// A child as rtcr would record it: services in the L4Re slots, two threads,
/// a server gate bound to the main thread, an IRQ bound to the second, a
/// semaphore, code/data/stack pages.
pub fn realistic(m: &ImageMeta) -> Checkpoint {
    let ps = m.page_shift;
    let sz = 1u64 << ps;
    Checkpoint {
        child: "counter".into(),
        clock_us: m.clock_us,
        utcb_area: (0x7fff_0000_0000, 12),
        objects: vec![
            ObjectRecord::Task,                                                                   // 0
            ObjectRecord::Service { service: Service::Factory, label: 0x10 },                     // 1
            ObjectRecord::Service { service: Service::Log, label: 0x20 },                         // 2
            ObjectRecord::Service { service: Service::Scheduler, label: 0x30 },                   // 3
            ObjectRecord::Service { service: Service::Pager, label: 0x40 },                       // 4
            ObjectRecord::Thread { thread: 0 },                                                   // 5
            ObjectRecord::Thread { thread: 1 },                                                   // 6
            ObjectRecord::Gate { label: 0xbeef_0000, bound: Some(5) },                            // 7
            ObjectRecord::Irq { label: 0x1230, bound: Some(6), hw_line: Some(3), pending: true }, // 8
            ObjectRecord::Semaphore { count: 2 },                                                 // 9
            ObjectRecord::Gate { label: 0x500, bound: None },                                     // 10
        ],
        caps: vec![
            CapRecord { slot: 1, object: 0, rights: 0xF, server: false },
            CapRecord { slot: 2, object: 1, rights: 0x7, server: false },
            CapRecord { slot: 3, object: 5, rights: 0xF, server: false },
            CapRecord { slot: 4, object: 4, rights: 0x5, server: false },
            CapRecord { slot: 5, object: 2, rights: 0x5, server: false },
            CapRecord { slot: 7, object: 3, rights: 0x5, server: false },
            CapRecord { slot: 10, object: 6, rights: 0xF, server: false },
            CapRecord { slot: 11, object: 7, rights: 0xF, server: true },
            CapRecord { slot: 12, object: 8, rights: 0xF, server: false },
            CapRecord { slot: 13, object: 9, rights: 0xD, server: false },
            CapRecord { slot: 0x20, object: 7, rights: 0x5, server: false },
            CapRecord { slot: 0x21, object: 10, rights: 0x7, server: true },
        ],
        threads: vec![
            thread(m.arch, 0, 0x7fff_0000_0000, ThreadState::InKernel),
            thread(m.arch, 1, 0x7fff_0000_0200, ThreadState::Running),
        ],
        pages: vec![
            page(0x40_0000, ps, 3),
            page(0x40_0000 + sz, ps, 5),
            page(0x40_0000 + 2 * sz, ps, 7),
            page(0x60_0000, ps, 11),
            page(0x7fff_f000 - sz + (0x1000 % sz), ps, 13),
            page(0x7fff_f000 + (0x1000 % sz), ps, 17),
        ],
        placement: vec![
            Placement { thread: 0, cpu: 0, affinity: (0xFF00_0000, 1) },
            Placement { thread: 1, cpu: 3, affinity: (3, 1) },
        ],
    }
}

/// A small checkpoint (one thread, no pages): a few hundred bytes.
pub fn small(m: &ImageMeta) -> Checkpoint {
    Checkpoint {
        child: "s".into(),
        clock_us: m.clock_us,
        utcb_area: (0x1000, 12),
        objects: vec![ObjectRecord::Task, ObjectRecord::Thread { thread: 0 }],
        caps: vec![
            CapRecord { slot: 1, object: 0, rights: 0xF, server: false },
            CapRecord { slot: 3, object: 1, rights: 0xF, server: false },
        ],
        threads: vec![ThreadRecord {
            utcb: 0x1000,
            prio: 1,
            quantum_us: 0,
            pager_slot: 4,
            exc_slot: 4,
            regs: vec![0; m.arch.regs_len()],
            utcb_words: vec![0; 128],
            state: ThreadState::Dead,
            fpu: Vec::new(),
            timeouts: Vec::new(),
        }],
        pages: vec![],
        placement: vec![],
    }
}

/// An image from a hand-written header (the layout has not changed since
/// format version 1; this writes version 4, the last with CRC-64/XZ, whose
/// body is the current one) and `body`, whatever `body` holds.
pub fn seal(m: &ImageMeta, body: &[u8]) -> Vec<u8> {
    let mut h = Vec::with_capacity(64 + body.len());
    h.extend_from_slice(b"RTCRIMG\0");
    h.extend_from_slice(&4u16.to_le_bytes());
    h.push(m.arch.code());
    h.push(m.page_shift);
    h.extend_from_slice(&0u32.to_le_bytes());
    h.extend_from_slice(&m.sequence.to_le_bytes());
    h.extend_from_slice(&m.clock_us.to_le_bytes());
    h.extend_from_slice(&(body.len() as u64).to_le_bytes());
    h.extend_from_slice(&crc64(body).to_le_bytes());
    h.extend_from_slice(&[0u8; 8]);
    let crc = crc64(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(h.len(), 64);
    h.extend_from_slice(body);
    h
}

/// The checksum the version in `image`'s header uses.
pub fn algo_of(image: &[u8]) -> Algo {
    Algo::for_version(u16::from_le_bytes([image[8], image[9]]))
}

/// Recomputes both checksums of an image whose header fields were edited.
pub fn reseal(image: &mut [u8]) {
    let algo = algo_of(image);
    let body_crc = algo.of(&image[64..]);
    image[40..48].copy_from_slice(&body_crc.to_le_bytes());
    let crc = algo.of(&image[..56]);
    image[56..64].copy_from_slice(&crc.to_le_bytes());
}

/// `cp` as an image of format version 3 (CRC-64/XZ), as rtcr wrote them
/// before version 5: the body is the same postcard encoding.
pub fn encode_v3(m: &ImageMeta, cp: &Checkpoint) -> Vec<u8> {
    assert!(cp.placement.is_empty(), "version 3 has no placement");
    // the body without its last field, an empty placement (one zero byte)
    let b = body(cp);
    let mut img = seal(m, &b[..b.len() - 1]);
    img[8..10].copy_from_slice(&3u16.to_le_bytes());
    reseal(&mut img);
    img
}

/// `cp` as version 4 wrote it: CRC-64/XZ checksums, the placement at the end.
pub fn encode_v4(m: &ImageMeta, cp: &Checkpoint) -> Vec<u8> {
    let mut img = seal(m, &body(cp));
    img[8..10].copy_from_slice(&4u16.to_le_bytes());
    reseal(&mut img);
    img
}

/// The postcard body of `cp`, skipping the crate's checks.
pub fn body(cp: &Checkpoint) -> Vec<u8> {
    postcard::to_allocvec(cp).unwrap()
}

/// Recomputes only the header checksum (the body's stays as it is).
pub fn reseal_header_only(image: &mut [u8]) {
    let crc = algo_of(image).of(&image[..56]);
    image[56..64].copy_from_slice(&crc.to_le_bytes());
}

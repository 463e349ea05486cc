//! The image checksums, by format version: CRC-64/XZ up to version 3
//! ([`crate::crc`]), XXH64 from version 5 on.
//!
//! Why the change: every restore checks every byte of the image before any
//! of it is used, so the checksum's speed is part of the recovery time. The
//! CRC (table-driven, slice-by-16) ran at ~3.7 × a memcpy of the image on a
//! desktop CPU and 13–20 × under QEMU TCG, most of a 16 MiB restore
//! (issue 12). Measured over 4 MiB against a memcpy of the same bytes:
//!
//! | where | CRC-64/XZ | XXH3-64 | XXH64 |
//! |---|---|---|---|
//! | rtcr on x86_64, QEMU TCG (`bench`) | 12.2 × | 3.2 × | 1.0 × |
//! | rtcr on arm64, QEMU TCG (`bench`) | 3.8 × | 2.6 × (NEON) | 1.2 × |
//! | host x86_64, cached (`cargo bench -p rtcr-image --bench crc`) | 22.5 × | 2.7 × (SSE2) | 3.3 × |
//!
//! XXH64 (xxhash-rust, no_std, no tables, four 64-bit lanes of multiplies
//! and rotates) is the fastest where rtcr runs without SIMD for it (the
//! x86_64 target has none) and under emulation; XXH3 gains only where it
//! gets wide vectors.
//!
//! What is given up: a CRC detects *every* burst of up to 64 flipped bits
//! and every odd number of flipped bits; XXH64 is a hash whose output
//! changes for any change of its input with a 2⁻⁶⁴ chance of a collision
//! for corruption that is not crafted, bursts included. For images in RAM
//! and flash, where the A/B store keeps the last good image, that is the
//! same protection in practice. Neither is a defence against someone who
//! crafts an image (no checksum without a key is).

use xxhash_rust::xxh64::{xxh64, Xxh64};

use crate::crc::{crc64, Crc64};

/// The first format version whose checksums are XXH64.
pub const XXH64_FROM_VERSION: u16 = 5;

/// Which checksum an image of a format version carries (header and body
/// alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algo {
    /// CRC-64/XZ (format versions 1 to 3).
    Crc64Xz,
    /// XXH64 with seed 0 (format version 5).
    Xxh64,
}

impl Algo {
    /// The checksum of `version` (versions this crate does not read get
    /// the newest: the caller has refused them before).
    pub const fn for_version(version: u16) -> Self {
        if version >= XXH64_FROM_VERSION {
            Algo::Xxh64
        } else {
            Algo::Crc64Xz
        }
    }

    /// Its name as tools show it.
    pub const fn name(self) -> &'static str {
        match self {
            Algo::Crc64Xz => "CRC-64/XZ",
            Algo::Xxh64 => "XXH64",
        }
    }

    /// The checksum of `data`.
    pub fn of(self, data: &[u8]) -> u64 {
        match self {
            Algo::Crc64Xz => crc64(data),
            Algo::Xxh64 => xxh64(data, 0),
        }
    }
}

/// A running checksum, for data that arrives in pieces (the store checks a
/// slot chunk by chunk).
#[derive(Clone)]
pub struct Checksum(State);

#[derive(Clone)]
enum State {
    Crc(Crc64),
    Xxh64(Xxh64),
}

impl core::fmt::Debug for Checksum {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Checksum").field(&self.algo()).finish()
    }
}

impl Checksum {
    /// A checksum of `algo` over no bytes yet.
    pub fn new(algo: Algo) -> Self {
        Checksum(match algo {
            Algo::Crc64Xz => State::Crc(Crc64::new()),
            Algo::Xxh64 => State::Xxh64(Xxh64::new(0)),
        })
    }

    /// Which checksum it is.
    pub fn algo(&self) -> Algo {
        match self.0 {
            State::Crc(_) => Algo::Crc64Xz,
            State::Xxh64(_) => Algo::Xxh64,
        }
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        match &mut self.0 {
            State::Crc(c) => c.update(data),
            State::Xxh64(h) => h.update(data),
        }
    }

    /// The checksum of everything fed so far.
    pub fn finish(&self) -> u64 {
        match &self.0 {
            State::Crc(c) => c.finish(),
            State::Xxh64(h) => h.digest(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_pick_their_checksum() {
        for v in 1..=3 {
            assert_eq!(Algo::for_version(v), Algo::Crc64Xz);
        }
        assert_eq!(Algo::for_version(5), Algo::Xxh64);
    }

    #[test]
    fn xxh64_reference_values() {
        // XXH64 with seed 0 of the empty input (the reference
        // implementation's value), and one byte changes it
        assert_eq!(Algo::Xxh64.of(b""), 0xEF46_DB37_51D8_E999);
        assert_ne!(Algo::Xxh64.of(&[0]), Algo::Xxh64.of(b""));
    }

    #[test]
    fn pieces_equal_whole() {
        let data: alloc::vec::Vec<u8> = (0..5000u32).map(|i| (i * 7 + 3) as u8).collect();
        for algo in [Algo::Crc64Xz, Algo::Xxh64] {
            let mut c = Checksum::new(algo);
            for chunk in data.chunks(17) {
                c.update(chunk);
            }
            assert_eq!(c.finish(), algo.of(&data), "{}", algo.name());
            assert_eq!(c.algo(), algo);
        }
    }
}

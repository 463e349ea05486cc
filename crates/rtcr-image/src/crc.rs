//! CRC-64/XZ, the image checksum.
//!
//! Why this one: a 64-bit CRC detects every burst error up to 64 bits and
//! every odd number of flipped bits, and leaves a 2⁻⁶⁴ chance for anything
//! else — enough for images of megabytes that cross ECUs and flash. CRC-64/XZ
//! (the ECMA-182 polynomial, reflected, init and xorout all ones) is the
//! variant `xz` and many tools use, so a host can check an image with
//! off-the-shelf code.
//!
//! The `crc` crate's slice-by-16 tables (32 KiB, built at compile time, no
//! heap) replaced a byte-at-a-time table written here: every checkpoint and
//! every restore runs this over the whole image, and `cargo bench -p
//! rtcr-image --bench crc` measured the crate several times faster (the
//! byte-at-a-time code is kept in that bench as its baseline).

use crc::{Crc, Digest, Table, CRC_64_XZ};

static CRC: Crc<u64, Table<16>> = Crc::<u64, Table<16>>::new(&CRC_64_XZ);

/// A running CRC-64/XZ, for data that arrives in pieces (the store checks a
/// slot chunk by chunk without holding the whole image).
#[derive(Clone)]
pub struct Crc64 {
    digest: Digest<'static, u64, Table<16>>,
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

impl core::fmt::Debug for Crc64 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Crc64").finish_non_exhaustive()
    }
}

impl Crc64 {
    /// A CRC over no bytes yet.
    pub fn new() -> Self {
        Self { digest: CRC.digest() }
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        self.digest.update(data);
    }

    /// The CRC of everything fed so far.
    pub fn finish(&self) -> u64 {
        self.digest.clone().finalize()
    }
}

/// CRC-64/XZ of `data`.
pub fn crc64(data: &[u8]) -> u64 {
    CRC.checksum(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_check_value() {
        // The catalogue's check value: CRC-64/XZ("123456789").
        assert_eq!(crc64(b"123456789"), 0x995D_C9BB_DF19_39FA);
    }

    #[test]
    fn empty_input() {
        assert_eq!(crc64(b""), 0);
    }

    #[test]
    fn pieces_equal_whole() {
        let data: [u8; 300] = core::array::from_fn(|i| (i * 7 + 3) as u8);
        let mut c = Crc64::new();
        for chunk in data.chunks(17) {
            c.update(chunk);
        }
        assert_eq!(c.finish(), crc64(&data));
    }
}

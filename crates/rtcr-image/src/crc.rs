//! CRC-64/XZ, the image checksum, in a few lines and without a dependency.
//!
//! Why this one: a 64-bit CRC detects every burst error up to 64 bits and
//! every odd number of flipped bits, and leaves a 2⁻⁶⁴ chance for anything
//! else — enough for images of megabytes that cross ECUs and flash. CRC-64/XZ
//! (the ECMA-182 polynomial, reflected, init and xorout all ones) is the
//! variant `xz` and many tools use, so a host can check an image with
//! off-the-shelf code. The table is computed at compile time; the root task
//! spends no time and no heap on it.

/// ECMA-182 polynomial, bit-reversed (the reflected form the table uses).
const POLY_REFLECTED: u64 = 0xC96C_5795_D787_0F42;

/// The byte-at-a-time table, generated at compile time.
const TABLE: [u64; 256] = make_table();

const fn make_table() -> [u64; 256] {
    let mut table = [0u64; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u64;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ POLY_REFLECTED } else { crc >> 1 };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// A running CRC-64/XZ, for data that arrives in pieces (the store checks a
/// slot chunk by chunk without holding the whole image).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Crc64 {
    state: u64,
}

impl Default for Crc64 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc64 {
    /// A CRC over no bytes yet.
    pub const fn new() -> Self {
        Self { state: !0 }
    }

    /// Feeds `data`.
    pub fn update(&mut self, data: &[u8]) {
        let mut crc = self.state;
        for &b in data {
            crc = TABLE[((crc ^ b as u64) & 0xFF) as usize] ^ (crc >> 8);
        }
        self.state = crc;
    }

    /// The CRC of everything fed so far.
    pub const fn finish(&self) -> u64 {
        !self.state
    }
}

/// CRC-64/XZ of `data`.
pub fn crc64(data: &[u8]) -> u64 {
    let mut c = Crc64::new();
    c.update(data);
    c.finish()
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

//! An image as text lines, for the one channel every board has: the
//! serial console. rtcr writes them through the kernel log
//! ([`write_lines`]); `rtcrctl reassemble` reads a captured log back into
//! the image ([`Reassembler`]). Both sides use this module, so the format
//! cannot drift apart.
//!
//! ```text
//! rtcr-image <seq> <offset, 8 hex digits> <bytes, 2 hex digits each>
//! rtcr-image-end <seq> <length>
//! ```
//!
//! Lines may sit among any other console output (the kernel's, the
//! child's); a line whose hex is damaged or a missing line makes the
//! reassembly fail with the offset, and the image's own CRCs catch what the
//! line format cannot.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::{self, Write};

/// Bytes per data line (192 hex digits: a line stays well under the
/// kernel log's 488-byte chunk).
pub const BYTES_PER_LINE: usize = 96;

const DATA: &str = "rtcr-image ";
const END: &str = "rtcr-image-end ";

/// Calls `out` with each line (without newline) of image `bytes`, sequence
/// `seq`.
pub fn write_lines(seq: u64, bytes: &[u8], mut out: impl FnMut(&str)) {
    let mut line = String::with_capacity(32 + 2 * BYTES_PER_LINE);
    for (i, chunk) in bytes.chunks(BYTES_PER_LINE).enumerate() {
        line.clear();
        let _ = write!(line, "{DATA}{seq} {:08x} ", i * BYTES_PER_LINE);
        for b in chunk {
            let _ = write!(line, "{b:02x}");
        }
        out(&line);
    }
    line.clear();
    let _ = write!(line, "{END}{seq} {}", bytes.len());
    out(&line);
}

/// Why a dump could not be put back together.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DumpError {
    /// No `rtcr-image-end` line: the dump never finished (or was not in the log).
    NoEnd,
    /// A data line of the image could not be read.
    BadLine {
        /// Its line number in the input (1-based).
        line: usize,
    },
    /// Bytes at this offset are missing (a lost line).
    Missing {
        /// The image's sequence.
        seq: u64,
        /// First missing offset.
        offset: usize,
    },
    /// Two lines give different bytes for the same offset.
    Conflict {
        /// The image's sequence.
        seq: u64,
        /// The offset.
        offset: usize,
    },
}

impl fmt::Display for DumpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DumpError::NoEnd => write!(f, "no complete image dump (no rtcr-image-end line)"),
            DumpError::BadLine { line } => write!(f, "line {line}: an rtcr-image line that does not parse"),
            DumpError::Missing { seq, offset } => {
                write!(f, "image {seq}: bytes from offset {offset:#x} are missing (a lost line)")
            }
            DumpError::Conflict { seq, offset } => {
                write!(f, "image {seq}: two lines disagree about offset {offset:#x}")
            }
        }
    }
}

/// Collects dump lines; [`Reassembler::finish`] gives the last complete image.
#[derive(Default)]
pub struct Reassembler {
    parts: BTreeMap<u64, BTreeMap<usize, Vec<u8>>>,
    /// The completed dumps in order: (sequence, length).
    ends: Vec<(u64, usize)>,
    lines: usize,
    bad: Option<usize>,
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

impl Reassembler {
    /// An empty one.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes one line of console output (any line; others are skipped).
    pub fn feed(&mut self, line: &str) {
        self.lines += 1;
        let line = line.trim_end();
        if let Some(at) = line.find(END) {
            let mut w = line[at + END.len()..].split_ascii_whitespace();
            match (w.next().and_then(|s| s.parse().ok()), w.next().and_then(|s| s.parse().ok())) {
                (Some(seq), Some(len)) => self.ends.push((seq, len)),
                _ => self.bad = self.bad.or(Some(self.lines)),
            }
        } else if let Some(at) = line.find(DATA) {
            let mut w = line[at + DATA.len()..].split_ascii_whitespace();
            let seq = w.next().and_then(|s| s.parse::<u64>().ok());
            let off = w.next().and_then(|s| usize::from_str_radix(s, 16).ok());
            let data = w.next().and_then(hex);
            match (seq, off, data, w.next()) {
                (Some(seq), Some(off), Some(data), None) => {
                    self.parts.entry(seq).or_default().insert(off, data);
                }
                // a damaged line: remembered, reported only if its image is the one wanted
                _ => self.bad = self.bad.or(Some(self.lines)),
            }
        }
    }

    /// The last image whose dump ended: (sequence, bytes).
    pub fn finish(self) -> Result<(u64, Vec<u8>), DumpError> {
        let &(seq, len) = self.ends.last().ok_or(DumpError::NoEnd)?;
        let empty = BTreeMap::new();
        let parts = self.parts.get(&seq).unwrap_or(&empty);
        let mut out = Vec::with_capacity(len);
        for (&off, data) in parts.range(..len) {
            if off > out.len() {
                return Err(match self.bad {
                    Some(line) => DumpError::BadLine { line },
                    None => DumpError::Missing { seq, offset: out.len() },
                });
            }
            let overlap = out.len() - off;
            if out[off..].iter().zip(data.iter()).any(|(a, b)| a != b) {
                return Err(DumpError::Conflict { seq, offset: off });
            }
            out.extend_from_slice(data.get(overlap..).unwrap_or(&[]));
        }
        if out.len() < len {
            return Err(match self.bad {
                Some(line) => DumpError::BadLine { line },
                None => DumpError::Missing { seq, offset: out.len() },
            });
        }
        out.truncate(len);
        Ok((seq, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn lines(seq: u64, bytes: &[u8]) -> Vec<String> {
        let mut v = Vec::new();
        write_lines(seq, bytes, |l| v.push(String::from(l)));
        v
    }

    fn image(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + 7) as u8).collect()
    }

    #[test]
    fn lines_come_back_as_the_image_among_other_output() {
        let img = image(1000);
        let mut r = Reassembler::new();
        r.feed("rtcr: checkpoint 3: 6 pages copied");
        for (i, l) in lines(3, &img).iter().enumerate() {
            if i == 2 {
                r.feed("KERNEL: Warning: something");
            }
            r.feed(l);
        }
        assert_eq!(r.finish(), Ok((3, img)));
    }

    #[test]
    fn the_last_complete_dump_wins_and_an_unfinished_one_is_ignored() {
        let (a, b) = (image(300), image(500));
        let mut r = Reassembler::new();
        lines(4, &a).iter().for_each(|l| r.feed(l));
        lines(9, &b).iter().for_each(|l| r.feed(l));
        // a third dump cut off before its end line
        lines(12, &a).iter().take(2).for_each(|l| r.feed(l));
        assert_eq!(r.finish(), Ok((9, b)));
        assert_eq!(Reassembler::new().finish(), Err(DumpError::NoEnd));
    }

    #[test]
    fn a_lost_or_damaged_line_is_named() {
        let img = image(400);
        let all = lines(2, &img);
        let mut r = Reassembler::new();
        all.iter().enumerate().filter(|(i, _)| *i != 1).for_each(|(_, l)| r.feed(l));
        assert_eq!(r.finish(), Err(DumpError::Missing { seq: 2, offset: BYTES_PER_LINE }));
        let mut r = Reassembler::new();
        for (i, l) in all.iter().enumerate() {
            if i == 1 {
                let mut damaged = l.clone();
                damaged.pop();
                damaged.push('g');
                r.feed(&damaged);
            } else {
                r.feed(l);
            }
        }
        assert_eq!(r.finish(), Err(DumpError::BadLine { line: 2 }));
        let mut r = Reassembler::new();
        all.iter().for_each(|l| r.feed(l));
        r.feed(&all[0].replacen(" 00000000 ", " 00000001 ", 1));
        assert!(matches!(r.finish(), Err(DumpError::Conflict { seq: 2, .. })));
    }

    #[test]
    fn an_empty_image_and_a_partial_last_line() {
        let mut r = Reassembler::new();
        lines(1, &[]).iter().for_each(|l| r.feed(l));
        assert_eq!(r.finish(), Ok((1, vec![])));
        let img = image(BYTES_PER_LINE + 5);
        let mut r = Reassembler::new();
        lines(1, &img).iter().for_each(|l| r.feed(l));
        assert_eq!(r.finish(), Ok((1, img)));
    }
}

//! The A/B checkpoint store: two image slots in one reserved region, so that
//! a torn or corrupted write never loses the last good checkpoint.
//!
//! DESIGN.md, "The checkpoint store": a new image goes into the *older* slot
//! (one that does not verify, else the one with the lower sequence), and the
//! newest slot that verifies is the one restored. Within a slot the body is
//! written first and the header last; until the header is complete the slot
//! fails verification (its old header's body checksum no longer matches, or the
//! new header's own checksum does not), so a power cut at any byte leaves the
//! other slot as the newest valid image.
//!
//! Every decision re-reads the region instead of trusting a cached picture:
//! a slot that rotted since the last write must not be mistaken for the good
//! one. Checking a slot streams it through the checksum in small chunks, so
//! [`Store::status`] and [`Store::write`] need no heap for the image;
//! only [`Store::latest`] allocates (the image it returns).
//!
//! The region is anything that reads and writes bytes at offsets
//! ([`Region`]): memory reserved at boot in rtcr, a file on a host,
//! [`MemRegion`] in tests, and [`TearingRegion`] to simulate a power cut.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::checksum::Checksum;
use crate::image::{read_header, verify, ImageError, HEADER_LEN};

/// Why a region access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionError {
    /// The access does not lie inside the region.
    OutOfBounds {
        /// Start of the access.
        offset: usize,
        /// Its length.
        len: usize,
        /// The region's length.
        region_len: usize,
    },
    /// Power was lost: the write stopped part-way (see [`TearingRegion`]).
    PowerLost,
    /// The device reported an error.
    Device(&'static str),
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RegionError::OutOfBounds { offset, len, region_len } => {
                write!(f, "access of {len} bytes at {offset} outside a region of {region_len} bytes")
            }
            RegionError::PowerLost => f.write_str("power lost during the write"),
            RegionError::Device(why) => write!(f, "device error: {why}"),
        }
    }
}

impl core::error::Error for RegionError {}

/// Byte-addressed storage the store lives in.
pub trait Region {
    /// Its size in bytes.
    fn len(&self) -> usize;

    /// Whether it holds no bytes at all.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Fills `buf` from `offset`.
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RegionError>;

    /// Writes `data` at `offset`.
    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), RegionError>;

    /// All of its bytes in place, if it is memory the caller can read
    /// directly (RAM, a file read whole): a restore then checks and decodes
    /// an image where it lies ([`Store::slot_image`]) instead of copying it
    /// into the heap first. `None` (the default): read through [`Region::read`].
    fn as_slice(&self) -> Option<&[u8]> {
        None
    }
}

fn span(offset: usize, len: usize, region_len: usize) -> Result<core::ops::Range<usize>, RegionError> {
    match offset.checked_add(len) {
        Some(end) if end <= region_len => Ok(offset..end),
        _ => Err(RegionError::OutOfBounds { offset, len, region_len }),
    }
}

/// A region in memory (tests, hosts, and a store file read whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemRegion(pub Vec<u8>);

impl MemRegion {
    /// `len` zero bytes: a store that was never written.
    pub fn zeroed(len: usize) -> Self {
        MemRegion(vec![0; len])
    }
}

impl Region for MemRegion {
    fn len(&self) -> usize {
        self.0.len()
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RegionError> {
        let r = span(offset, buf.len(), self.0.len())?;
        buf.copy_from_slice(&self.0[r]);
        Ok(())
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), RegionError> {
        let r = span(offset, data.len(), self.0.len())?;
        self.0[r].copy_from_slice(data);
        Ok(())
    }

    fn as_slice(&self) -> Option<&[u8]> {
        Some(&self.0)
    }
}

/// A region that loses power after a given number of written bytes: the
/// write that crosses the budget stores only its first bytes, it and every
/// later write fail with [`RegionError::PowerLost`]. For testing what a torn
/// write leaves behind.
#[derive(Clone, Debug)]
pub struct TearingRegion<R> {
    inner: R,
    budget: usize,
    torn: bool,
}

impl<R: Region> TearingRegion<R> {
    /// `inner`, losing power once `cut_after` more bytes have been written.
    pub fn new(inner: R, cut_after: usize) -> Self {
        TearingRegion { inner, budget: cut_after, torn: false }
    }

    /// Whether power has been lost.
    pub fn torn(&self) -> bool {
        self.torn
    }

    /// The underlying region, as the cut left it (what a reboot finds).
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Region> Region for TearingRegion<R> {
    fn len(&self) -> usize {
        self.inner.len()
    }

    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), RegionError> {
        self.inner.read(offset, buf)
    }

    fn as_slice(&self) -> Option<&[u8]> {
        self.inner.as_slice()
    }

    fn write(&mut self, offset: usize, data: &[u8]) -> Result<(), RegionError> {
        if self.torn {
            return Err(RegionError::PowerLost);
        }
        span(offset, data.len(), self.inner.len())?;
        if data.len() <= self.budget {
            self.budget -= data.len();
            return self.inner.write(offset, data);
        }
        let kept = self.budget;
        self.budget = 0;
        self.torn = true;
        self.inner.write(offset, &data[..kept])?;
        Err(RegionError::PowerLost)
    }
}

/// One of the two slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Slot {
    /// The first half of the region.
    A,
    /// The second half.
    B,
}

impl Slot {
    /// 0 for A, 1 for B (the index into [`Store::status`]).
    pub const fn index(self) -> usize {
        match self {
            Slot::A => 0,
            Slot::B => 1,
        }
    }

    /// The other slot.
    pub const fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Slot::A => "A",
            Slot::B => "B",
        })
    }
}

/// What a slot holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotStatus {
    /// An image that verifies (header and body checksums).
    Valid {
        /// Its sequence number.
        sequence: u64,
    },
    /// Nothing was ever written (the header is all zeroes).
    Empty,
    /// Something that is not a valid image, and why.
    Corrupt(ImageError),
    /// The region could not be read.
    Unreadable(RegionError),
}

impl fmt::Display for SlotStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotStatus::Valid { sequence } => write!(f, "valid, sequence {sequence}"),
            SlotStatus::Empty => f.write_str("empty"),
            SlotStatus::Corrupt(e) => write!(f, "corrupt: {e}"),
            SlotStatus::Unreadable(e) => write!(f, "unreadable: {e}"),
        }
    }
}

/// Why a store operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// The image to write does not verify itself.
    Invalid(ImageError),
    /// The image does not fit in a slot.
    TooLarge {
        /// The image's length.
        len: usize,
        /// A slot's length.
        slot_len: usize,
    },
    /// The image is not newer than the newest valid one already stored.
    SequenceNotNewer {
        /// The image's sequence number.
        sequence: u64,
        /// The newest stored one.
        newest: u64,
    },
    /// Neither slot was ever written.
    Empty,
    /// The slot asked for holds no valid image.
    SlotInvalid {
        /// The slot.
        slot: Slot,
        /// Why.
        reason: ImageError,
    },
    /// Neither slot holds a valid image; why, for each.
    NoValidImage {
        /// Slot A's reason.
        a: ImageError,
        /// Slot B's reason.
        b: ImageError,
    },
    /// The region failed.
    Region(RegionError),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Invalid(e) => write!(f, "the image to store is invalid: {e}"),
            StoreError::TooLarge { len, slot_len } => {
                write!(f, "the image ({len} bytes) does not fit in a slot ({slot_len} bytes)")
            }
            StoreError::SequenceNotNewer { sequence, newest } => {
                write!(f, "sequence {sequence} is not newer than the stored sequence {newest}")
            }
            StoreError::Empty => f.write_str("the store is empty"),
            StoreError::SlotInvalid { slot, reason } => write!(f, "slot {slot}: {reason}"),
            StoreError::NoValidImage { a, b } => write!(f, "no valid image: slot A: {a}; slot B: {b}"),
            StoreError::Region(e) => write!(f, "region: {e}"),
        }
    }
}

impl core::error::Error for StoreError {}

impl From<RegionError> for StoreError {
    fn from(e: RegionError) -> Self {
        StoreError::Region(e)
    }
}

/// Bytes read per step when a slot is checked in place.
const CHUNK: usize = 512;

/// Two image slots over a [`Region`], split into equal halves (an odd last
/// byte is unused).
#[derive(Clone, Debug)]
pub struct Store<R> {
    region: R,
}

impl<R: Region> Store<R> {
    /// A store over `region`; nothing is read or written yet.
    pub fn new(region: R) -> Self {
        Store { region }
    }

    /// The region.
    pub fn region(&self) -> &R {
        &self.region
    }

    /// The region back (what a file-backed caller writes out).
    pub fn into_inner(self) -> R {
        self.region
    }

    /// Bytes per slot: the largest image the store takes.
    pub fn slot_len(&self) -> usize {
        self.region.len() / 2
    }

    /// Where `slot` starts in the region.
    pub fn slot_offset(&self, slot: Slot) -> usize {
        slot.index() * self.slot_len()
    }

    /// Both slots' status, A first.
    pub fn status(&self) -> [SlotStatus; 2] {
        [self.slot_status(Slot::A), self.slot_status(Slot::B)]
    }

    /// What `slot` holds, checked in place (no heap).
    pub fn slot_status(&self, slot: Slot) -> SlotStatus {
        match self.check_slot(slot) {
            Ok(sequence) => SlotStatus::Valid { sequence },
            Err(Err(ImageError::Blank)) => SlotStatus::Empty,
            Err(Err(e)) => SlotStatus::Corrupt(e),
            Err(Ok(e)) => SlotStatus::Unreadable(e),
        }
    }

    /// The sequence of the image in `slot` if it verifies; otherwise the
    /// region's error (`Err(Ok(_))`) or the image's (`Err(Err(_))`).
    fn check_slot(&self, slot: Slot) -> Result<u64, Result<RegionError, ImageError>> {
        let base = self.slot_offset(slot);
        let slot_len = self.slot_len();
        let mut head = [0u8; HEADER_LEN];
        let head = &mut head[..slot_len.min(HEADER_LEN)];
        self.region.read(base, head).map_err(Ok)?;
        let header = read_header(head).map_err(Err)?;
        let available = slot_len - HEADER_LEN;
        let body_len = usize::try_from(header.body_len)
            .ok()
            .filter(|&n| n <= available)
            .ok_or(Err(ImageError::BodyLength { stored: header.body_len, available: available as u64 }))?;
        let mut crc = Checksum::new(header.checksum());
        let mut buf = [0u8; CHUNK];
        let mut done = 0;
        while done < body_len {
            let n = (body_len - done).min(CHUNK);
            self.region.read(base + HEADER_LEN + done, &mut buf[..n]).map_err(Ok)?;
            crc.update(&buf[..n]);
            done += n;
        }
        if crc.finish() != header.body_crc {
            return Err(Err(ImageError::BodyChecksum { stored: header.body_crc, computed: crc.finish() }));
        }
        Ok(header.sequence)
    }

    /// The image in `slot`, read whole and verified.
    pub fn read_slot(&self, slot: Slot) -> Result<Vec<u8>, StoreError> {
        let image = self.read_unchecked(slot)?;
        verify(&image).map_err(|reason| StoreError::SlotInvalid { slot, reason })?;
        Ok(image)
    }

    /// The slots whose header verifies (the body is not read), newest
    /// first (A on a tie): the order a restorer tries them in. For a
    /// restore that checks the body itself as it decodes it
    /// ([`crate::decode`]), with [`Store::read_unchecked`]: the body's checksum
    /// is computed once, where [`Store::latest`] computes it for both slots
    /// and again for the one it returns.
    pub fn newest_first(&self) -> Vec<Slot> {
        let header = |slot: Slot| {
            let mut head = [0u8; HEADER_LEN];
            let head = &mut head[..self.slot_len().min(HEADER_LEN)];
            self.region.read(self.slot_offset(slot), head).ok()?;
            let h = read_header(head).ok()?;
            (h.image_len() <= self.slot_len() as u64).then_some(h.sequence)
        };
        let mut slots: Vec<(Slot, u64)> =
            [Slot::A, Slot::B].into_iter().filter_map(|slot| header(slot).map(|seq| (slot, seq))).collect();
        // stable: A stays first on a tie
        slots.sort_by_key(|s| core::cmp::Reverse(s.1));
        slots.into_iter().map(|(slot, _)| slot).collect()
    }

    /// The image in `slot` as its header describes it, read whole, with its
    /// header checked but its body's checksum not: the caller verifies it
    /// ([`crate::decode`] does) before using any of it.
    pub fn read_unchecked(&self, slot: Slot) -> Result<Vec<u8>, StoreError> {
        let len = self.unchecked_len(slot)?;
        let mut image = vec![0u8; len];
        self.region.read(self.slot_offset(slot), &mut image)?;
        Ok(image)
    }

    /// [`Store::read_unchecked`] without the copy where the region allows
    /// ([`Region::as_slice`]): the image borrowed where it lies in the
    /// region, else read into the heap. Its body is not checked either.
    pub fn slot_image(&self, slot: Slot) -> Result<alloc::borrow::Cow<'_, [u8]>, StoreError> {
        let len = self.unchecked_len(slot)?;
        let base = self.slot_offset(slot);
        match self.region.as_slice().and_then(|r| r.get(base..base.checked_add(len)?)) {
            Some(image) => Ok(alloc::borrow::Cow::Borrowed(image)),
            None => self.read_unchecked(slot).map(alloc::borrow::Cow::Owned),
        }
    }

    /// The length of the image in `slot` as its checked header says (at
    /// most the slot's).
    fn unchecked_len(&self, slot: Slot) -> Result<usize, StoreError> {
        let bad = |reason| StoreError::SlotInvalid { slot, reason };
        let base = self.slot_offset(slot);
        let slot_len = self.slot_len();
        let mut head = [0u8; HEADER_LEN];
        let head = &mut head[..slot_len.min(HEADER_LEN)];
        self.region.read(base, head)?;
        let header = read_header(head).map_err(bad)?;
        let len = usize::try_from(header.image_len()).unwrap_or(usize::MAX);
        if len > slot_len {
            let available = (slot_len - HEADER_LEN) as u64;
            return Err(bad(ImageError::BodyLength { stored: header.body_len, available }));
        }
        Ok(len)
    }

    /// The newest image that verifies, and its slot (A on a tie).
    pub fn latest(&self) -> Result<(Slot, Vec<u8>), StoreError> {
        let st = self.status();
        // Valid slots first, newest first; then the others (their reasons).
        let order = if valid_sequence(st[1]) > valid_sequence(st[0]) { [Slot::B, Slot::A] } else { [Slot::A, Slot::B] };
        let mut why = [ImageError::Blank; 2];
        for slot in order {
            why[slot.index()] = match st[slot.index()] {
                SlotStatus::Valid { .. } => match self.read_slot(slot) {
                    Ok(image) => return Ok((slot, image)),
                    Err(StoreError::SlotInvalid { reason, .. }) => reason,
                    Err(e) => return Err(e),
                },
                SlotStatus::Empty => ImageError::Blank,
                SlotStatus::Corrupt(e) => e,
                SlotStatus::Unreadable(e) => return Err(StoreError::Region(e)),
            };
        }
        match why {
            [ImageError::Blank, ImageError::Blank] => Err(StoreError::Empty),
            [a, b] => Err(StoreError::NoValidImage { a, b }),
        }
    }

    /// Stores `image` in the older slot — one that does not verify, else the
    /// one with the lower sequence, A on a tie — body first, header last.
    /// Refuses an image that does not verify, does not fit, or is not newer
    /// than the newest valid one; the stored images are then untouched.
    pub fn write(&mut self, image: &[u8]) -> Result<Slot, StoreError> {
        let meta = verify(image).map_err(StoreError::Invalid)?;
        if image.len() > self.slot_len() {
            return Err(StoreError::TooLarge { len: image.len(), slot_len: self.slot_len() });
        }
        let st = self.status();
        let (a, b) = (valid_sequence(st[0]), valid_sequence(st[1]));
        if let Some(newest) = a.max(b) {
            if meta.sequence <= newest {
                return Err(StoreError::SequenceNotNewer { sequence: meta.sequence, newest });
            }
        }
        let target = match (a, b) {
            (None, _) => Slot::A,
            (Some(_), None) => Slot::B,
            (Some(a), Some(b)) => {
                if b < a {
                    Slot::B
                } else {
                    Slot::A
                }
            }
        };
        let base = self.slot_offset(target);
        self.region.write(base + HEADER_LEN, &image[HEADER_LEN..])?;
        self.region.write(base, &image[..HEADER_LEN])?;
        Ok(target)
    }
}

/// The sequence of a valid slot; `None` sorts below every sequence.
fn valid_sequence(s: SlotStatus) -> Option<u64> {
    match s {
        SlotStatus::Valid { sequence } => Some(sequence),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_region_bounds() {
        let mut r = MemRegion::zeroed(8);
        assert_eq!(r.write(6, &[1, 2]), Ok(()));
        assert_eq!(r.write(7, &[1, 2]), Err(RegionError::OutOfBounds { offset: 7, len: 2, region_len: 8 }));
        assert!(r.read(usize::MAX, &mut [0u8; 2]).is_err());
        let mut b = [0u8; 2];
        r.read(6, &mut b).unwrap();
        assert_eq!(b, [1, 2]);
    }

    #[test]
    fn tearing_region_keeps_the_prefix() {
        let mut r = TearingRegion::new(MemRegion::zeroed(8), 3);
        assert_eq!(r.write(0, &[1, 1]), Ok(()));
        assert_eq!(r.write(2, &[2, 2, 2]), Err(RegionError::PowerLost));
        assert_eq!(r.write(5, &[3]), Err(RegionError::PowerLost));
        assert!(r.torn());
        assert_eq!(r.into_inner().0, [1, 1, 2, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn tiny_regions_never_panic() {
        for len in 0..140 {
            let mut s = Store::new(MemRegion(vec![0xA5; len]));
            let _ = s.status();
            let _ = s.latest();
            assert!(s.write(&[0u8; 64]).is_err());
        }
    }
}

//! The image container: a fixed header that can be checked before anything
//! is decoded, then the postcard encoding of one [`Checkpoint`].
//!
//! An image is read in places that cannot trust it: a slot of the store after
//! a power cut, a boot module from another ECU, a file on a host. So the
//! header is hand-encoded little-endian at fixed offsets (no decoder runs on
//! unchecked bytes), carries its own checksum, and bounds the body; the body
//! has a checksum of its own; only then is the body decoded, and only then are the
//! records checked against each other (indices in range, page sizes, register
//! counts). Each step fails with an [`ImageError`] that says exactly what is
//! wrong — nothing here panics, whatever the bytes.
//!
//! # Layout (format version 5, all little-endian; versions 1 to 4 are read too)
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `b"RTCRIMG\0"` |
//! | 8 | 2 | format version (5; 4 has CRCs, 3 also lacks the threads' CPUs, 2 also the L4Re objects, 1 also `ThreadState::InCall`) |
//! | 10 | 1 | architecture ([`Arch`]: 1 amd64, 2 arm64) |
//! | 11 | 1 | page shift (log2 of the page size) |
//! | 12 | 4 | flags (0; no flag is defined) |
//! | 16 | 8 | sequence number |
//! | 24 | 8 | kernel clock at the cut (µs) |
//! | 32 | 8 | body length |
//! | 40 | 8 | checksum of the body |
//! | 48 | 8 | reserved (0) |
//! | 56 | 8 | checksum of bytes 0..56 |
//! | 64 | body length | postcard encoding of [`Checkpoint`] |
//!
//! The checksum is XXH64 (seed 0) from version 5 on, CRC-64/XZ in versions
//! 1 to 4 ([`crate::checksum`] says why it changed). Version 4 appended
//! [`Checkpoint::placement`] (each thread's CPU) to the body; the layout is
//! otherwise that of version 3.
//!
//! Magic and version are the stable prefix: they are checked before the
//! header checksum, so a reader meeting a later format says "unsupported version"
//! even if that format moved the other fields.
//!
//! # Bounded work on hostile bytes
//!
//! The body length is checked against the bytes actually present before
//! anything is read or allocated. The body decoder (postcard over serde)
//! never reserves more for a sequence than the bytes left could hold:
//! postcard's `SeqAccess::size_hint` reports no hint when a claimed length
//! exceeds the remaining input, and serde caps any hint at 1 MiB. So a body
//! claiming 2⁶⁰ elements fails with "unexpected end", after allocating only
//! what the elements present need (tests/hostile.rs holds that to account).

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::checksum::Algo;
use crate::record::{Checkpoint, ObjectRecord};

/// The first eight bytes of every image.
pub const MAGIC: [u8; 8] = *b"RTCRIMG\0";
/// The format version this crate writes.
pub const FORMAT_VERSION: u16 = 5;
/// The oldest format version this crate still reads (versions 2 and 3 only
/// added variants at the ends of enums — a thread state; the L4Re objects
/// and services — so older bodies decode as they are; version 4 added
/// [`Checkpoint::placement`] at the end, which an older body lacks).
pub const OLDEST_READABLE_VERSION: u16 = 1;

/// Whether this crate reads images of format `version`: 1 to 4 (CRC-64/XZ)
/// and 5 (XXH64).
pub const fn is_readable(version: u16) -> bool {
    matches!(version, OLDEST_READABLE_VERSION..=FORMAT_VERSION)
}
/// Size of the fixed header.
pub const HEADER_LEN: usize = 64;
/// The header checksum covers bytes `0..HEADER_CRC_SPAN`.
pub const HEADER_CRC_SPAN: usize = 56;
/// Words of UTCB every thread record carries.
pub const UTCB_WORDS: usize = 128;
/// Largest FPU/SIMD state a thread record may carry (x86 XSAVE areas stay below it).
pub const MAX_FPU_BYTES: usize = 4096;

/// The architecture an image was taken on: registers and page sizes are
/// only meaningful there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Arch {
    /// x86_64.
    Amd64 = 1,
    /// AArch64.
    Arm64 = 2,
}

impl Arch {
    /// The architecture with header code `code`, if any.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Arch::Amd64),
            2 => Some(Arch::Arm64),
            _ => None,
        }
    }

    /// The header code.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// Its usual short name ("amd64", "arm64").
    pub const fn name(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }

    /// Words in a thread's register set (the kernel's exception layout).
    pub const fn regs_len(self) -> usize {
        match self {
            Arch::Amd64 => 26,
            Arch::Arm64 => 40,
        }
    }

    /// Index of the instruction pointer (amd64 `ip`, arm64 `pc`) in the
    /// register set.
    pub const fn ip_index(self) -> usize {
        match self {
            Arch::Amd64 => 18,
            Arch::Arm64 => 36,
        }
    }

    /// Index of the stack pointer in the register set.
    pub const fn sp_index(self) -> usize {
        match self {
            Arch::Amd64 => 21,
            Arch::Arm64 => 35,
        }
    }

    /// Whether Fiasco on this architecture can run with pages of
    /// `1 << shift` bytes: 4 KiB on amd64; 4, 16 or 64 KiB translation
    /// granules on arm64.
    pub const fn supports_page_shift(self, shift: u8) -> bool {
        match self {
            Arch::Amd64 => shift == 12,
            Arch::Arm64 => matches!(shift, 12 | 14 | 16),
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the header says about an image, besides lengths and checksums.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageMeta {
    /// Where the checkpoint was taken.
    pub arch: Arch,
    /// log2 of the page size (every page record holds `1 << page_shift` bytes).
    pub page_shift: u8,
    /// Orders images: the store keeps the newest, a restore picks it.
    pub sequence: u64,
    /// Kernel clock at the cut (µs); equal to [`Checkpoint::clock_us`].
    pub clock_us: u64,
}

impl ImageMeta {
    /// The page size in bytes.
    pub const fn page_size(&self) -> usize {
        1usize << self.page_shift
    }
}

/// A header that passed its own checks (magic, version, checksum, known values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Format version ([`FORMAT_VERSION`]).
    pub format_version: u16,
    /// Architecture.
    pub arch: Arch,
    /// log2 of the page size.
    pub page_shift: u8,
    /// Flags (0).
    pub flags: u32,
    /// Sequence number.
    pub sequence: u64,
    /// Kernel clock at the cut (µs).
    pub clock_us: u64,
    /// Body length in bytes.
    pub body_len: u64,
    /// Checksum of the body ([`Header::checksum`] says which).
    pub body_crc: u64,
    /// Checksum of header bytes 0..56.
    pub header_crc: u64,
}

impl Header {
    /// The fields callers act on.
    pub const fn meta(&self) -> ImageMeta {
        ImageMeta { arch: self.arch, page_shift: self.page_shift, sequence: self.sequence, clock_us: self.clock_us }
    }

    /// The checksum this image's version uses.
    pub const fn checksum(&self) -> Algo {
        Algo::for_version(self.format_version)
    }

    /// Header plus body, in bytes (saturating: a header may claim any body
    /// length; [`verify`] checks it against the bytes present).
    pub const fn image_len(&self) -> u64 {
        (HEADER_LEN as u64).saturating_add(self.body_len)
    }
}

/// Why a body failed to decode (postcard's reasons, in this crate's words so
/// that callers do not depend on postcard's error type).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyError {
    /// The body ends in the middle of a record.
    UnexpectedEnd,
    /// A variable-length integer does not terminate or does not fit.
    BadVarint,
    /// A boolean is neither 0 nor 1.
    BadBool,
    /// An option tag is neither 0 nor 1.
    BadOption,
    /// A string is not UTF-8.
    BadUtf8,
    /// A value the schema does not allow (for example an unknown enum variant).
    BadValue,
    /// The record ends `extra` bytes before the body does.
    TrailingBytes {
        /// Bytes left over.
        extra: usize,
    },
    /// Encoding the checkpoint failed.
    Encode,
    /// Any other decoder failure.
    Other,
}

impl From<postcard::Error> for BodyError {
    fn from(e: postcard::Error) -> Self {
        use postcard::Error as P;
        match e {
            P::DeserializeUnexpectedEnd => BodyError::UnexpectedEnd,
            P::DeserializeBadVarint => BodyError::BadVarint,
            P::DeserializeBadBool => BodyError::BadBool,
            P::DeserializeBadOption => BodyError::BadOption,
            P::DeserializeBadUtf8 | P::DeserializeBadChar => BodyError::BadUtf8,
            P::DeserializeBadEnum | P::DeserializeBadEncoding | P::SerdeDeCustom => BodyError::BadValue,
            P::SerializeBufferFull | P::SerializeSeqLengthUnknown | P::SerdeSerCustom | P::CollectStrError => {
                BodyError::Encode
            }
            _ => BodyError::Other,
        }
    }
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::UnexpectedEnd => f.write_str("the body ends in the middle of a record"),
            BodyError::BadVarint => f.write_str("a variable-length integer is malformed"),
            BodyError::BadBool => f.write_str("a boolean is neither 0 nor 1"),
            BodyError::BadOption => f.write_str("an option tag is neither 0 nor 1"),
            BodyError::BadUtf8 => f.write_str("a string is not valid UTF-8"),
            BodyError::BadValue => f.write_str("a value the schema does not allow (e.g. an unknown variant)"),
            BodyError::TrailingBytes { extra } => write!(f, "{extra} bytes follow the checkpoint record in the body"),
            BodyError::Encode => f.write_str("the checkpoint could not be encoded"),
            BodyError::Other => f.write_str("the body could not be decoded"),
        }
    }
}

/// Everything that can be wrong with an image, one reason per variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageError {
    /// Fewer bytes than a header.
    TooShort {
        /// Bytes a header needs.
        needed: usize,
        /// Bytes present.
        got: usize,
    },
    /// The header is all zeroes: nothing was ever written here.
    Blank,
    /// The first eight bytes are not [`MAGIC`].
    BadMagic,
    /// A format version this crate does not read.
    UnsupportedVersion(u16),
    /// The header's checksum does not match its bytes.
    HeaderChecksum {
        /// Checksum in the header.
        stored: u64,
        /// Checksum of the header bytes.
        computed: u64,
    },
    /// An architecture code that is not an [`Arch`].
    UnknownArch(u8),
    /// A page shift the image's architecture cannot run with.
    BadPageShift(u8),
    /// Flags this version does not define.
    UnsupportedFlags(u32),
    /// The reserved header bytes are not zero.
    ReservedNotZero,
    /// The header claims a longer body than the bytes present.
    BodyLength {
        /// Body length in the header.
        stored: u64,
        /// Bytes present after the header.
        available: u64,
    },
    /// The body's checksum does not match its bytes.
    BodyChecksum {
        /// Checksum in the header.
        stored: u64,
        /// Checksum of the body bytes.
        computed: u64,
    },
    /// The body is not a valid encoding of a checkpoint.
    Body(BodyError),
    /// The input continues `extra` bytes past the end of the image.
    TrailingBytes {
        /// Bytes after header plus body.
        extra: usize,
    },
    /// The records contradict each other or the header.
    Inconsistent(&'static str),
    /// The image is for another architecture than the caller runs on.
    WrongArch {
        /// The image's architecture.
        image: Arch,
        /// The caller's.
        expected: Arch,
    },
    /// The image has another page size than the caller runs with.
    WrongPageSize {
        /// The image's page shift.
        image: u8,
        /// The caller's.
        expected: u8,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ImageError::TooShort { needed, got } => write!(f, "too short: {got} bytes, a header needs {needed}"),
            ImageError::Blank => f.write_str("blank: the header is all zeroes (never written)"),
            ImageError::BadMagic => f.write_str("bad magic: not an rtcr image"),
            ImageError::UnsupportedVersion(v) => {
                write!(f, "unsupported format version {v} (this reader knows 1 to 3 and {FORMAT_VERSION})")
            }
            ImageError::HeaderChecksum { stored, computed } => {
                write!(f, "header checksum mismatch: stored {stored:#018x}, computed {computed:#018x}")
            }
            ImageError::UnknownArch(a) => write!(f, "unknown architecture code {a}"),
            ImageError::BadPageShift(s) => write!(f, "page shift {s} is not supported by the image's architecture"),
            ImageError::UnsupportedFlags(x) => write!(f, "unsupported header flags {x:#x}"),
            ImageError::ReservedNotZero => f.write_str("reserved header bytes are not zero"),
            ImageError::BodyLength { stored, available } => {
                write!(f, "body length {stored} exceeds the {available} bytes after the header")
            }
            ImageError::BodyChecksum { stored, computed } => {
                write!(f, "body checksum mismatch: stored {stored:#018x}, computed {computed:#018x}")
            }
            ImageError::Body(e) => write!(f, "body does not decode: {e}"),
            ImageError::TrailingBytes { extra } => write!(f, "{extra} bytes follow the end of the image"),
            ImageError::Inconsistent(why) => write!(f, "inconsistent records: {why}"),
            ImageError::WrongArch { image, expected } => write!(f, "image is for {image}, expected {expected}"),
            ImageError::WrongPageSize { image, expected } => write!(
                f,
                "image has {} byte pages, expected {}",
                1u64.checked_shl(image.into()).unwrap_or(0),
                1u64.checked_shl(expected.into()).unwrap_or(0)
            ),
        }
    }
}

impl core::error::Error for ImageError {}

impl From<BodyError> for ImageError {
    fn from(e: BodyError) -> Self {
        ImageError::Body(e)
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    let mut w = [0u8; 2];
    w.copy_from_slice(&b[at..at + 2]);
    u16::from_le_bytes(w)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Parses and checks the header at the start of `bytes` (which may hold
/// more): length, blank, magic, version, header checksum, then the values.
/// Does not look at the body.
pub fn read_header(bytes: &[u8]) -> Result<Header, ImageError> {
    let Some(h) = bytes.get(..HEADER_LEN) else {
        return Err(ImageError::TooShort { needed: HEADER_LEN, got: bytes.len() });
    };
    if h.iter().all(|&b| b == 0) {
        return Err(ImageError::Blank);
    }
    if h[..8] != MAGIC {
        return Err(ImageError::BadMagic);
    }
    let format_version = u16_at(h, 8);
    if !is_readable(format_version) {
        return Err(ImageError::UnsupportedVersion(format_version));
    }
    let header_crc = u64_at(h, HEADER_CRC_SPAN);
    let computed = Algo::for_version(format_version).of(&h[..HEADER_CRC_SPAN]);
    if header_crc != computed {
        return Err(ImageError::HeaderChecksum { stored: header_crc, computed });
    }
    let arch = Arch::from_code(h[10]).ok_or(ImageError::UnknownArch(h[10]))?;
    let page_shift = h[11];
    if !arch.supports_page_shift(page_shift) {
        return Err(ImageError::BadPageShift(page_shift));
    }
    let flags = u32_at(h, 12);
    if flags != 0 {
        return Err(ImageError::UnsupportedFlags(flags));
    }
    if h[48..56].iter().any(|&b| b != 0) {
        return Err(ImageError::ReservedNotZero);
    }
    Ok(Header {
        format_version,
        arch,
        page_shift,
        flags,
        sequence: u64_at(h, 16),
        clock_us: u64_at(h, 24),
        body_len: u64_at(h, 32),
        body_crc: u64_at(h, 40),
        header_crc,
    })
}

/// Checks the image at the start of `bytes` (header and both checksums) and
/// ignores whatever follows it — for images in larger containers, such as a
/// store slot or a padded boot module. Returns the header and the image's
/// length in bytes.
pub fn verify_prefix(bytes: &[u8]) -> Result<(Header, usize), ImageError> {
    let header = read_header(bytes)?;
    let available = bytes.len() - HEADER_LEN;
    let body_len = usize::try_from(header.body_len)
        .ok()
        .filter(|&n| n <= available)
        .ok_or(ImageError::BodyLength { stored: header.body_len, available: available as u64 })?;
    let body = &bytes[HEADER_LEN..HEADER_LEN + body_len];
    let computed = header.checksum().of(body);
    if computed != header.body_crc {
        return Err(ImageError::BodyChecksum { stored: header.body_crc, computed });
    }
    Ok((header, HEADER_LEN + body_len))
}

/// Checks that `bytes` is exactly one image whose header and body checksums
/// match, without decoding the body.
pub fn verify(bytes: &[u8]) -> Result<ImageMeta, ImageError> {
    let (header, len) = verify_prefix(bytes)?;
    if bytes.len() > len {
        return Err(ImageError::TrailingBytes { extra: bytes.len() - len });
    }
    Ok(header.meta())
}

/// A body of format version 1 to 3: [`Checkpoint`] without its placement;
/// from version 4 on the placement follows it.
#[derive(serde::Deserialize)]
struct CheckpointUpTo3 {
    child: alloc::string::String,
    clock_us: u64,
    utcb_area: (u64, u8),
    objects: Vec<ObjectRecord>,
    caps: Vec<crate::record::CapRecord>,
    threads: Vec<crate::record::ThreadRecord>,
    pages: Vec<crate::record::PageRecord>,
}

impl From<CheckpointUpTo3> for Checkpoint {
    fn from(c: CheckpointUpTo3) -> Self {
        let CheckpointUpTo3 { child, clock_us, utcb_area, objects, caps, threads, pages } = c;
        Checkpoint { child, clock_us, utcb_area, objects, caps, threads, pages, placement: Vec::new() }
    }
}

/// Version 4 on: the placement that follows the pages (see
/// [`CheckpointUpTo3`]); what follows it.
fn take_placement<'a>(version: u16, rest: &'a [u8], cp: &mut Checkpoint) -> Result<&'a [u8], ImageError> {
    if version < 4 {
        return Ok(rest);
    }
    let (placement, rest) = postcard::take_from_bytes(rest).map_err(BodyError::from)?;
    cp.placement = placement;
    Ok(rest)
}

/// Verifies and decodes an image, then checks its records ([`check`]).
pub fn decode(bytes: &[u8]) -> Result<(ImageMeta, Checkpoint), ImageError> {
    let meta = verify(bytes)?;
    let body = &bytes[HEADER_LEN..];
    let (old, rest) = postcard::take_from_bytes::<CheckpointUpTo3>(body).map_err(BodyError::from)?;
    let mut cp: Checkpoint = old.into();
    let rest = take_placement(read_header(bytes)?.format_version, rest, &mut cp)?;
    if !rest.is_empty() {
        return Err(BodyError::TrailingBytes { extra: rest.len() }.into());
    }
    check(&meta, &cp)?;
    Ok((meta, cp))
}

/// [`decode`] for a restorer that runs on `expected_arch` with pages of
/// `1 << expected_page_shift` bytes: an image from elsewhere is refused
/// (after its header is checked, before its body is decoded).
pub fn decode_for(
    bytes: &[u8],
    expected_arch: Arch,
    expected_page_shift: u8,
) -> Result<(ImageMeta, Checkpoint), ImageError> {
    let header = read_header(bytes)?;
    if header.arch != expected_arch {
        return Err(ImageError::WrongArch { image: header.arch, expected: expected_arch });
    }
    if header.page_shift != expected_page_shift {
        return Err(ImageError::WrongPageSize { image: header.page_shift, expected: expected_page_shift });
    }
    decode(bytes)
}

/// [`decode_for`] for a restore that writes the page bytes into frames
/// itself: they are not copied out of `bytes` but returned borrowed from
/// it, in the order of [`Checkpoint::pages`] (none for a zero page), and
/// those records carry no bytes. The checks are [`decode_for`]'s: the
/// whole image's checksums first, then the records, and each page's bytes
/// are one page long or none.
pub fn decode_borrowed_for(
    bytes: &[u8],
    expected_arch: Arch,
    expected_page_shift: u8,
) -> Result<(ImageMeta, Checkpoint, crate::record::PageBytes<'_>), ImageError> {
    let header = read_header(bytes)?;
    if header.arch != expected_arch {
        return Err(ImageError::WrongArch { image: header.arch, expected: expected_arch });
    }
    if header.page_shift != expected_page_shift {
        return Err(ImageError::WrongPageSize { image: header.page_shift, expected: expected_page_shift });
    }
    let meta = verify(bytes)?;
    let (mut cp, data, rest) = crate::record::take_borrowed(&bytes[HEADER_LEN..]).map_err(BodyError::from)?;
    let rest = take_placement(header.format_version, rest, &mut cp)?;
    if !rest.is_empty() {
        return Err(BodyError::TrailingBytes { extra: rest.len() }.into());
    }
    if data.iter().any(|d| !d.is_empty() && d.len() != meta.page_size()) {
        return Err(ImageError::Inconsistent("a page's data is neither one page long nor empty (a zero page)"));
    }
    check(&meta, &cp)?;
    Ok((meta, cp, data))
}

/// Encodes `cp` as an image described by `meta`, after checking that the
/// records are consistent ([`check`]): rtcr finds its own bugs when it writes
/// an image, not when it restores one.
pub fn encode(meta: &ImageMeta, cp: &Checkpoint) -> Result<Vec<u8>, ImageError> {
    check(meta, cp)?;
    // the body's size first (cheap: page bytes are counted, not copied), so
    // the image is written into one allocation of its final size: growing
    // it by doubling needed up to three times its size at once (the old
    // buffer, the new one twice as large), which for a 16 MiB child took
    // rtcr's heap past 64 MiB on the kernel
    let body = postcard::serialize_with_flavor(cp, postcard::ser_flavors::Size::default()).map_err(BodyError::from)?;
    let mut out = Vec::with_capacity(HEADER_LEN + body);
    out.resize(HEADER_LEN, 0);
    let mut out = postcard::to_extend(cp, out).map_err(BodyError::from)?;
    let body_len = (out.len() - HEADER_LEN) as u64;
    let body_crc = Algo::for_version(FORMAT_VERSION).of(&out[HEADER_LEN..]);
    let header = header_bytes(meta, body_len, body_crc);
    out[..HEADER_LEN].copy_from_slice(&header);
    Ok(out)
}

/// The 64 header bytes for an image of `meta` with the given body.
fn header_bytes(meta: &ImageMeta, body_len: u64, body_crc: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    h[10] = meta.arch.code();
    h[11] = meta.page_shift;
    // 12..16 flags: 0.
    h[16..24].copy_from_slice(&meta.sequence.to_le_bytes());
    h[24..32].copy_from_slice(&meta.clock_us.to_le_bytes());
    h[32..40].copy_from_slice(&body_len.to_le_bytes());
    h[40..48].copy_from_slice(&body_crc.to_le_bytes());
    // 48..56 reserved: 0.
    let crc = Algo::for_version(FORMAT_VERSION).of(&h[..HEADER_CRC_SPAN]);
    h[56..64].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Checks that the records of `cp` agree with each other and with `meta`:
/// the page shift suits the architecture; the clocks agree; every object
/// index is in range, every binding names a thread object and no thread
/// record has two objects; gate and service labels have bits 0–1 clear (the
/// kernel ORs the sender's rights into them); capability slots are unique and
/// rights are W/S/R/D only; each thread has the architecture's register count
/// and [`UTCB_WORDS`] UTCB words; pages are page-aligned, unique and one page
/// long.
pub fn check(meta: &ImageMeta, cp: &Checkpoint) -> Result<(), ImageError> {
    use ImageError::Inconsistent;

    if !meta.arch.supports_page_shift(meta.page_shift) {
        return Err(ImageError::BadPageShift(meta.page_shift));
    }
    if meta.clock_us != cp.clock_us {
        return Err(Inconsistent("the header's clock differs from the checkpoint's"));
    }

    let is_thread = |r: u32| matches!(cp.objects.get(r as usize), Some(ObjectRecord::Thread { .. }));
    let mut thread_named = vec![false; cp.threads.len()];
    for obj in &cp.objects {
        match *obj {
            ObjectRecord::Thread { thread } => {
                let seen = thread_named
                    .get_mut(thread as usize)
                    .ok_or(Inconsistent("a thread object names no thread record"))?;
                if core::mem::replace(seen, true) {
                    return Err(Inconsistent("two thread objects name the same thread record"));
                }
            }
            ObjectRecord::Gate { label, bound } => {
                if label & 3 != 0 {
                    return Err(Inconsistent("a gate label has bits 0-1 set"));
                }
                if let Some(b) = bound {
                    if (b as usize) >= cp.objects.len() {
                        return Err(Inconsistent("a gate is bound to an object index out of range"));
                    }
                    if !is_thread(b) {
                        return Err(Inconsistent("a gate is bound to an object that is not a thread"));
                    }
                }
            }
            ObjectRecord::Irq { bound, .. } => {
                if let Some(b) = bound {
                    if (b as usize) >= cp.objects.len() {
                        return Err(Inconsistent("an IRQ is bound to an object index out of range"));
                    }
                    if !is_thread(b) {
                        return Err(Inconsistent("an IRQ is bound to an object that is not a thread"));
                    }
                }
            }
            ObjectRecord::Service { label, .. } => {
                if label & 3 != 0 {
                    return Err(Inconsistent("a service gate label has bits 0-1 set"));
                }
            }
            ObjectRecord::Kip { vaddr } => {
                if vaddr & ((1u64 << meta.page_shift) - 1) != 0 {
                    return Err(Inconsistent("the KIP's address is not page aligned"));
                }
            }
            ObjectRecord::Dataspace { size, ref loose, .. } => {
                let page = 1u64 << meta.page_shift;
                if size % page != 0 {
                    return Err(Inconsistent("a dataspace's size is not a page multiple"));
                }
                for (off, data) in loose {
                    if off % page != 0 || *off >= size || !(data.is_empty() || data.len() as u64 == page) {
                        return Err(Inconsistent("a dataspace's loose page is not a page inside it"));
                    }
                }
            }
            ObjectRecord::Region { start, size, ds, offset, .. } => {
                let page = 1u64 << meta.page_shift;
                if start % page != 0 || size % page != 0 || size == 0 || start.checked_add(size).is_none() {
                    return Err(Inconsistent("a region is not whole pages"));
                }
                if let Some(d) = ds {
                    match cp.objects.get(d as usize) {
                        Some(ObjectRecord::Dataspace { size: ds_size, .. }) => {
                            if offset.checked_add(size).is_none_or(|e| e > *ds_size) {
                                return Err(Inconsistent("a region shows more than its dataspace has"));
                            }
                        }
                        _ => return Err(Inconsistent("a region names an object that is not a dataspace")),
                    }
                }
            }
            ObjectRecord::Area { start, size, .. } => {
                if size == 0 || start.checked_add(size).is_none() {
                    return Err(Inconsistent("an area is empty or wraps"));
                }
            }
            ObjectRecord::Task | ObjectRecord::Semaphore { .. } => {}
        }
    }
    if cp.caps.iter().any(|c| {
        matches!(cp.objects.get(c.object as usize), Some(ObjectRecord::Region { .. } | ObjectRecord::Area { .. }))
    }) {
        return Err(Inconsistent("a capability names a region or an area"));
    }
    if cp.caps.iter().any(|c| matches!(cp.objects.get(c.object as usize), Some(ObjectRecord::Kip { .. }))) {
        return Err(Inconsistent("a capability names the KIP"));
    }

    for cap in &cp.caps {
        if (cap.object as usize) >= cp.objects.len() {
            return Err(Inconsistent("a capability refers to an object index out of range"));
        }
        if cap.rights & !0xF != 0 {
            return Err(Inconsistent("a capability has rights bits other than W, S, R, D"));
        }
    }
    let mut slots: Vec<u64> = cp.caps.iter().map(|c| c.slot).collect();
    slots.sort_unstable();
    if slots.windows(2).any(|w| w[0] == w[1]) {
        return Err(Inconsistent("two capabilities occupy the same slot"));
    }

    for t in &cp.threads {
        if t.regs.len() != meta.arch.regs_len() {
            return Err(Inconsistent("a thread's register count does not match the architecture"));
        }
        if t.utcb_words.len() != UTCB_WORDS {
            return Err(Inconsistent("a thread's UTCB is not 128 words"));
        }
        if t.fpu.len() > MAX_FPU_BYTES {
            return Err(Inconsistent("a thread's FPU state is larger than any architecture's"));
        }
        if t.timeouts.len() > 2 || t.timeouts.iter().any(|&(br, _)| br as usize >= 58) {
            return Err(Inconsistent("a thread's timeouts name more than two or a buffer register beyond 57"));
        }
    }

    let mut placed = vec![false; cp.threads.len()];
    for p in &cp.placement {
        let seen = placed.get_mut(p.thread as usize).ok_or(Inconsistent("a placement names a thread out of range"))?;
        if core::mem::replace(seen, true) {
            return Err(Inconsistent("a thread has two placements"));
        }
        if p.cpu >= 64 * 64 {
            return Err(Inconsistent("a placement names a CPU beyond any kernel's"));
        }
    }

    let page_size = meta.page_size();
    for p in &cp.pages {
        if p.vaddr & (page_size as u64 - 1) != 0 {
            return Err(Inconsistent("a page address is not page-aligned"));
        }
        if !p.data.is_empty() && p.data.len() != page_size {
            return Err(Inconsistent("a page's data is neither one page long nor empty (a zero page)"));
        }
    }
    let mut vaddrs: Vec<u64> = cp.pages.iter().map(|p| p.vaddr).collect();
    vaddrs.sort_unstable();
    if vaddrs.windows(2).any(|w| w[0] == w[1]) {
        return Err(Inconsistent("two pages have the same address"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    fn meta() -> ImageMeta {
        ImageMeta { arch: Arch::Amd64, page_shift: 12, sequence: 7, clock_us: 1234 }
    }

    fn empty() -> Checkpoint {
        Checkpoint {
            child: String::from("c"),
            clock_us: 1234,
            utcb_area: (0, 0),
            objects: Vec::new(),
            caps: Vec::new(),
            threads: Vec::new(),
            pages: Vec::new(),
            placement: Vec::new(),
        }
    }

    #[test]
    fn header_layout_is_fixed() {
        let img = encode(&meta(), &empty()).unwrap();
        assert_eq!(&img[0..8], b"RTCRIMG\0");
        assert_eq!(u16_at(&img, 8), 5);
        assert_eq!(img[10], 1);
        assert_eq!(img[11], 12);
        assert_eq!(u32_at(&img, 12), 0);
        assert_eq!(u64_at(&img, 16), 7);
        assert_eq!(u64_at(&img, 24), 1234);
        assert_eq!(u64_at(&img, 32), (img.len() - HEADER_LEN) as u64);
        let xxh64 = |b: &[u8]| xxhash_rust::xxh64::xxh64(b, 0);
        assert_eq!(u64_at(&img, 40), xxh64(&img[HEADER_LEN..]));
        assert_eq!(&img[48..56], &[0u8; 8]);
        assert_eq!(u64_at(&img, 56), xxh64(&img[..56]));
    }

    #[test]
    fn empty_checkpoint_round_trips() {
        let img = encode(&meta(), &empty()).unwrap();
        assert_eq!(decode(&img).unwrap(), (meta(), empty()));
        assert_eq!(verify(&img).unwrap(), meta());
    }

    #[test]
    fn blank_and_short() {
        assert_eq!(read_header(&[0u8; 64]), Err(ImageError::Blank));
        assert_eq!(read_header(&[0u8; 10]), Err(ImageError::TooShort { needed: 64, got: 10 }));
    }

    #[test]
    fn page_shifts_per_arch() {
        assert!(Arch::Amd64.supports_page_shift(12));
        assert!(!Arch::Amd64.supports_page_shift(16));
        assert!(Arch::Arm64.supports_page_shift(16));
        assert!(!Arch::Arm64.supports_page_shift(13));
        let bad = ImageMeta { page_shift: 13, ..meta() };
        assert_eq!(encode(&bad, &empty()), Err(ImageError::BadPageShift(13)));
    }
}

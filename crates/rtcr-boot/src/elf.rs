//! The child's image: a static ELF64 executable, as bootstrap leaves it in
//! a boot module. rtcr loads its PT_LOAD segments into frames it owns
//! (issue 5), so every number in the file is checked here first: that it
//! is a little-endian ELF64 executable for this machine, not dynamically
//! linked, that every segment lies inside the file and inside the address
//! range the child may use, that no two segments overlap, and that the
//! entry point is in an executable segment.
//!
//! Segment flags map straight onto Fiasco memory rights: ELF's PF_X/PF_W/PF_R
//! (1/2/4) are the fpage X/W/R bits (1/2/4). Two segments may share a page
//! (the linker packs them); the loader gives such a page the union of their
//! rights.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

/// `e_machine` of x86-64.
pub const EM_X86_64: u16 = 62;
/// `e_machine` of AArch64.
pub const EM_AARCH64: u16 = 183;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
/// `PT_LOOS + 0x14`: L4Re's auxiliary descriptors (`.rol4re_elf_aux`), the
/// mark of a program built by the L4Re make.
pub const PT_L4_AUX: u32 = 0x6000_0014;
const ET_EXEC: u16 = 2;
const PHDR_SIZE: usize = 56;
/// More program headers than this is not a child anyone built on purpose.
pub const MAX_PHDRS: usize = 64;

/// What is wrong with an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElfError {
    /// Shorter than an ELF header.
    TooShort,
    /// No `\x7fELF` at the start.
    NotElf,
    /// Not ELF64 little-endian, version 1.
    WrongFormat,
    /// Not an executable (ET_EXEC): relocatable, shared object or PIE.
    NotExecutable(u16),
    /// Built for another machine.
    WrongMachine {
        /// What the file says.
        found: u16,
        /// What rtcr runs on.
        expected: u16,
    },
    /// The program headers do not fit the file, or are not 56 bytes each,
    /// or there are more than [`MAX_PHDRS`].
    BadProgramHeaders,
    /// Has PT_INTERP or PT_DYNAMIC: needs a dynamic loader rtcr does not have.
    NotStatic,
    /// No PT_LOAD segment.
    NothingToLoad,
    /// Segment `index`'s file bytes lie outside the file.
    SegmentOutsideFile(usize),
    /// Segment `index` has more file bytes than memory bytes.
    FileLargerThanMemory(usize),
    /// Segment `index` lies (partly) outside the range the child may use.
    SegmentOutsideRange {
        /// Program header index.
        index: usize,
        /// Its first address.
        start: u64,
        /// One past its last address.
        end: u64,
    },
    /// Segments `a` and `b` overlap.
    Overlap(usize, usize),
    /// The entry point is not inside an executable segment.
    EntryNotExecutable(u64),
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ElfError::TooShort => write!(f, "shorter than an ELF header (64 bytes)"),
            ElfError::NotElf => write!(f, "not an ELF file (no \\x7fELF magic)"),
            ElfError::WrongFormat => write!(f, "not a little-endian ELF64 file of version 1"),
            ElfError::NotExecutable(t) => {
                write!(f, "ELF type {t}, not a fixed-address executable (link it static, not PIE)")
            }
            ElfError::WrongMachine { found, expected } => {
                write!(f, "built for machine {found}, rtcr runs on machine {expected}")
            }
            ElfError::BadProgramHeaders => write!(f, "program headers do not fit the file"),
            ElfError::NotStatic => write!(f, "dynamically linked (PT_INTERP/PT_DYNAMIC): link it static"),
            ElfError::NothingToLoad => write!(f, "no loadable segment"),
            ElfError::SegmentOutsideFile(i) => write!(f, "segment {i}: its bytes lie outside the file"),
            ElfError::FileLargerThanMemory(i) => write!(f, "segment {i}: more file bytes than memory bytes"),
            ElfError::SegmentOutsideRange { index, start, end } => {
                write!(f, "segment {index} at {start:#x}..{end:#x} lies outside the child's address range")
            }
            ElfError::Overlap(a, b) => write!(f, "segments {a} and {b} overlap"),
            ElfError::EntryNotExecutable(e) => write!(f, "entry point {e:#x} is not in an executable segment"),
        }
    }
}

/// One loadable segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Program header index.
    pub index: usize,
    /// First virtual address.
    pub vaddr: u64,
    /// Bytes in memory (the part past `file.len()` is zero).
    pub mem_size: u64,
    /// The bytes from the file: `image[file_start..file_end]`.
    pub file_start: usize,
    /// End of the file bytes.
    pub file_end: usize,
    /// Fiasco memory rights: R 4, W 2, X 1 (= ELF PF_R/PF_W/PF_X).
    pub rights: u8,
}

/// A checked image.
#[derive(Clone, Copy, Debug)]
pub struct Image<'a> {
    bytes: &'a [u8],
    /// The entry point.
    pub entry: u64,
    phoff: usize,
    phnum: usize,
}

/// `N` bytes at `at` (the caller has checked the bounds).
fn field<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut w = [0u8; N];
    w.copy_from_slice(&b[at..at + N]);
    w
}
fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(field(b, at))
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(field(b, at))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(field(b, at))
}

impl<'a> Image<'a> {
    /// Checks `bytes` as a static executable for `machine` whose segments
    /// all lie in `range` (start, end exclusive).
    pub fn parse(bytes: &'a [u8], machine: u16, range: (u64, u64)) -> Result<Self, ElfError> {
        if bytes.len() < 64 {
            return Err(ElfError::TooShort);
        }
        if &bytes[..4] != b"\x7fELF" {
            return Err(ElfError::NotElf);
        }
        if bytes[4] != 2 || bytes[5] != 1 || bytes[6] != 1 {
            return Err(ElfError::WrongFormat);
        }
        let ty = u16_at(bytes, 16);
        if ty != ET_EXEC {
            return Err(ElfError::NotExecutable(ty));
        }
        let found = u16_at(bytes, 18);
        if found != machine {
            return Err(ElfError::WrongMachine { found, expected: machine });
        }
        let entry = u64_at(bytes, 24);
        let phoff = u64_at(bytes, 32);
        let phentsize = u16_at(bytes, 54) as usize;
        let phnum = u16_at(bytes, 56) as usize;
        if phentsize != PHDR_SIZE || phnum > MAX_PHDRS {
            return Err(ElfError::BadProgramHeaders);
        }
        let phoff = usize::try_from(phoff).map_err(|_| ElfError::BadProgramHeaders)?;
        let end = phoff.checked_add(phnum * PHDR_SIZE).ok_or(ElfError::BadProgramHeaders)?;
        if end > bytes.len() {
            return Err(ElfError::BadProgramHeaders);
        }
        let image = Image { bytes, entry, phoff, phnum };
        for i in 0..phnum {
            let ty = u32_at(bytes, phoff + i * PHDR_SIZE);
            if ty == PT_INTERP || ty == PT_DYNAMIC {
                return Err(ElfError::NotStatic);
            }
        }
        let mut loads = 0;
        let mut entry_ok = false;
        for s in image.raw_segments() {
            let s = s?;
            loads += 1;
            let end = s.vaddr.checked_add(s.mem_size).ok_or(ElfError::SegmentOutsideRange {
                index: s.index,
                start: s.vaddr,
                end: u64::MAX,
            })?;
            if s.vaddr < range.0 || end > range.1 {
                return Err(ElfError::SegmentOutsideRange { index: s.index, start: s.vaddr, end });
            }
            if s.rights & 1 != 0 && (s.vaddr..end).contains(&entry) {
                entry_ok = true;
            }
            for t in image.raw_segments().flatten().filter(|t| t.index < s.index) {
                let t_end = t.vaddr + t.mem_size;
                if s.mem_size > 0 && t.mem_size > 0 && s.vaddr < t_end && t.vaddr < end {
                    return Err(ElfError::Overlap(t.index, s.index));
                }
            }
        }
        if loads == 0 {
            return Err(ElfError::NothingToLoad);
        }
        if !entry_ok {
            return Err(ElfError::EntryNotExecutable(entry));
        }
        Ok(image)
    }

    fn raw_segments(&self) -> impl Iterator<Item = Result<Segment, ElfError>> + '_ {
        (0..self.phnum).filter_map(move |i| {
            let p = self.phoff + i * PHDR_SIZE;
            let b = self.bytes;
            if u32_at(b, p) != PT_LOAD {
                return None;
            }
            let flags = u32_at(b, p + 4);
            let (offset, vaddr, filesz, memsz) =
                (u64_at(b, p + 8), u64_at(b, p + 16), u64_at(b, p + 32), u64_at(b, p + 40));
            let file = usize::try_from(offset)
                .ok()
                .zip(usize::try_from(filesz).ok())
                .and_then(|(o, n)| Some((o, o.checked_add(n)?)))
                .filter(|&(_, e)| e <= b.len());
            let Some((file_start, file_end)) = file else { return Some(Err(ElfError::SegmentOutsideFile(i))) };
            if filesz > memsz {
                return Some(Err(ElfError::FileLargerThanMemory(i)));
            }
            Some(Ok(Segment { index: i, vaddr, mem_size: memsz, file_start, file_end, rights: (flags & 7) as u8 }))
        })
    }

    /// The loadable segments (all checked by [`Image::parse`]).
    pub fn segments(&self) -> impl Iterator<Item = Segment> + '_ {
        self.raw_segments().flatten()
    }

    /// The bytes of the PT_L4_AUX segment (L4Re's auxiliary descriptors:
    /// stack, KIP address), if the program has one — an L4Re program. A
    /// segment whose bytes lie outside the file counts as none.
    pub fn l4_aux(&self) -> Option<&'a [u8]> {
        (0..self.phnum).find_map(|i| {
            let p = self.phoff + i * PHDR_SIZE;
            let b = self.bytes;
            if u32_at(b, p) != PT_L4_AUX {
                return None;
            }
            let (offset, filesz) = (usize::try_from(u64_at(b, p + 8)).ok()?, usize::try_from(u64_at(b, p + 32)).ok()?);
            b.get(offset..offset.checked_add(filesz)?)
        })
    }

    /// Where the program headers are in the program's memory, and how many
    /// (`AT_PHDR`, `AT_PHNUM`): the PT_PHDR segment's address, or the
    /// address of their file offset inside a loaded segment; `None` when no
    /// segment loads them.
    pub fn phdrs_in_memory(&self) -> Option<(u64, u64)> {
        const PT_PHDR: u32 = 6;
        let n = self.phnum as u64;
        for i in 0..self.phnum {
            let p = self.phoff + i * PHDR_SIZE;
            if u32_at(self.bytes, p) == PT_PHDR {
                return Some((u64_at(self.bytes, p + 16), n));
            }
        }
        let off = self.phoff as u64;
        self.segments().find_map(|s| {
            let start = s.file_start as u64;
            (start <= off && off + n * PHDR_SIZE as u64 <= s.file_end as u64).then(|| (s.vaddr + off - start, n))
        })
    }

    /// The file bytes of a segment.
    pub fn file_bytes(&self, s: &Segment) -> &'a [u8] {
        &self.bytes[s.file_start..s.file_end]
    }

    /// The child's memory as whole 4 KiB pages, in address order: each
    /// page's contents (file bytes, zero past them) and rights (the union of
    /// the rights of every segment that touches the page, as the page is
    /// mapped whole).
    pub fn pages(&self) -> Vec<(u64, Vec<u8>, u8)> {
        let mut pages: BTreeMap<u64, (Vec<u8>, u8)> = BTreeMap::new();
        for s in self.segments() {
            let file = self.file_bytes(&s);
            let end = s.vaddr + s.mem_size;
            let mut page = s.vaddr & !0xfff;
            while page < end {
                let e = pages.entry(page).or_insert_with(|| (vec![0u8; 4096], 0));
                e.1 |= s.rights;
                // the file bytes that fall into this page
                let from = page.max(s.vaddr);
                let to = (page + 4096).min(s.vaddr + file.len() as u64);
                if from < to {
                    let src = &file[(from - s.vaddr) as usize..(to - s.vaddr) as usize];
                    e.0[(from - page) as usize..(to - page) as usize].copy_from_slice(src);
                }
                page += 4096;
            }
        }
        pages.into_iter().map(|(va, (bytes, rights))| (va, bytes, rights)).collect()
    }
}

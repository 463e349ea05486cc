//! The child's ELF image: a well-formed static executable is accepted with
//! its segments; each way a file can be wrong is refused with its reason,
//! and no input panics.

use rtcr_boot::elf::{ElfError, Image, EM_AARCH64, EM_X86_64};

const RANGE: (u64, u64) = (0x40_0000, 0x4000_0000);

struct Ph {
    ty: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
}

fn load(flags: u32, offset: u64, vaddr: u64, filesz: u64, memsz: u64) -> Ph {
    Ph { ty: 1, flags, offset, vaddr, filesz, memsz }
}

/// An ELF64 executable with the given program headers and `len` bytes.
fn elf(machine: u16, entry: u64, phs: &[Ph], len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len.max(64 + 56 * phs.len())];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[6] = 1;
    b[16..18].copy_from_slice(&2u16.to_le_bytes());
    b[18..20].copy_from_slice(&machine.to_le_bytes());
    b[24..32].copy_from_slice(&entry.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&(phs.len() as u16).to_le_bytes());
    for (i, p) in phs.iter().enumerate() {
        let o = 64 + 56 * i;
        b[o..o + 4].copy_from_slice(&p.ty.to_le_bytes());
        b[o + 4..o + 8].copy_from_slice(&p.flags.to_le_bytes());
        b[o + 8..o + 16].copy_from_slice(&p.offset.to_le_bytes());
        b[o + 16..o + 24].copy_from_slice(&p.vaddr.to_le_bytes());
        b[o + 24..o + 32].copy_from_slice(&p.vaddr.to_le_bytes());
        b[o + 32..o + 40].copy_from_slice(&p.filesz.to_le_bytes());
        b[o + 40..o + 48].copy_from_slice(&p.memsz.to_le_bytes());
    }
    b
}

fn good() -> Vec<u8> {
    // text (R X) with the entry, then data (R W) with a bss tail
    let mut b = elf(
        EM_X86_64,
        0x40_1010,
        &[load(5, 0x1000, 0x40_1000, 0x200, 0x200), load(6, 0x2000, 0x40_3000, 0x10, 0x3000)],
        0x3000,
    );
    b[0x1000..0x1200].fill(0x90);
    b[0x2000..0x2010].fill(0xaa);
    b
}

#[test]
fn a_static_executable_is_accepted_with_its_segments() {
    let b = good();
    let img = Image::parse(&b, EM_X86_64, RANGE).unwrap();
    assert_eq!(img.entry, 0x40_1010);
    let segs: Vec<_> = img.segments().collect();
    assert_eq!(segs.len(), 2);
    assert_eq!((segs[0].vaddr, segs[0].mem_size, segs[0].rights), (0x40_1000, 0x200, 5));
    assert_eq!(img.file_bytes(&segs[0]), &[0x90u8; 0x200][..]);
    assert_eq!((segs[1].vaddr, segs[1].mem_size, segs[1].rights), (0x40_3000, 0x3000, 6));
    assert_eq!(img.file_bytes(&segs[1]), &[0xaau8; 0x10][..]);
}

#[test]
fn each_fault_is_refused_with_its_reason() {
    let range = RANGE;
    assert_eq!(Image::parse(&[0u8; 10], EM_X86_64, range).unwrap_err(), ElfError::TooShort);
    assert_eq!(Image::parse(&[0u8; 100], EM_X86_64, range).unwrap_err(), ElfError::NotElf);
    let mut b = good();
    b[4] = 1;
    assert_eq!(Image::parse(&b, EM_X86_64, range).unwrap_err(), ElfError::WrongFormat);
    let mut b = good();
    b[16] = 3; // ET_DYN: a PIE
    assert_eq!(Image::parse(&b, EM_X86_64, range).unwrap_err(), ElfError::NotExecutable(3));
    assert_eq!(
        Image::parse(&good(), EM_AARCH64, range).unwrap_err(),
        ElfError::WrongMachine { found: EM_X86_64, expected: EM_AARCH64 }
    );
    let mut b = good();
    b[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
    assert_eq!(Image::parse(&b, EM_X86_64, range).unwrap_err(), ElfError::BadProgramHeaders);
    let mut b = good();
    b[56..58].copy_from_slice(&200u16.to_le_bytes());
    assert_eq!(Image::parse(&b, EM_X86_64, range).unwrap_err(), ElfError::BadProgramHeaders);
    let interp = Ph { ty: 3, flags: 4, offset: 0, vaddr: 0, filesz: 0, memsz: 0 };
    let b = elf(EM_X86_64, 0x40_1000, &[load(5, 0x1000, 0x40_1000, 0x10, 0x10), interp], 0x2000);
    assert_eq!(Image::parse(&b, EM_X86_64, range).unwrap_err(), ElfError::NotStatic);
    let b = elf(EM_X86_64, 0x40_1000, &[], 0x100);
    assert_eq!(Image::parse(&b, EM_X86_64, range).unwrap_err(), ElfError::NothingToLoad);
    let b = elf(EM_X86_64, 0x40_1000, &[load(5, 0x1000, 0x40_1000, 0x2000, 0x2000)], 0x2000);
    assert_eq!(Image::parse(&b, EM_X86_64, range).unwrap_err(), ElfError::SegmentOutsideFile(0));
    let b = elf(EM_X86_64, 0x40_1000, &[load(5, u64::MAX, 0x40_1000, 2, 2)], 0x2000);
    assert_eq!(Image::parse(&b, EM_X86_64, range).unwrap_err(), ElfError::SegmentOutsideFile(0));
    let b = elf(EM_X86_64, 0x40_1000, &[load(5, 0x1000, 0x40_1000, 0x20, 0x10)], 0x2000);
    assert_eq!(Image::parse(&b, EM_X86_64, range).unwrap_err(), ElfError::FileLargerThanMemory(0));
    let b = elf(EM_X86_64, 0x1000, &[load(5, 0x1000, 0x1000, 0x10, 0x10)], 0x2000);
    assert!(matches!(Image::parse(&b, EM_X86_64, range), Err(ElfError::SegmentOutsideRange { index: 0, .. })));
    let b = elf(EM_X86_64, 0x40_1000, &[load(5, 0x1000, 0x40_1000, 0x10, u64::MAX)], 0x2000);
    assert!(matches!(Image::parse(&b, EM_X86_64, range), Err(ElfError::SegmentOutsideRange { index: 0, .. })));
    let b = elf(
        EM_X86_64,
        0x40_1000,
        &[load(5, 0x1000, 0x40_1000, 0x10, 0x1000), load(6, 0x1000, 0x40_1800, 0x10, 0x10)],
        0x2000,
    );
    assert_eq!(Image::parse(&b, EM_X86_64, range).unwrap_err(), ElfError::Overlap(0, 1));
    // entry in a data segment, or nowhere
    let b =
        elf(EM_X86_64, 0x40_3000, &[load(5, 0x1000, 0x40_1000, 0x10, 0x10), load(6, 0x1000, 0x40_3000, 0, 8)], 0x2000);
    assert_eq!(Image::parse(&b, EM_X86_64, range).unwrap_err(), ElfError::EntryNotExecutable(0x40_3000));
    // the messages name the problem
    assert_eq!(
        format!("{}", ElfError::NotExecutable(3)),
        "ELF type 3, not a fixed-address executable (link it static, not PIE)"
    );
}

#[test]
fn segments_may_share_a_page() {
    // text ends and rodata begins inside the same page (the loader unions rights)
    let b = elf(
        EM_AARCH64,
        0x40_1000,
        &[load(5, 0x1000, 0x40_1000, 0x80, 0x80), load(4, 0x1080, 0x40_1080, 0x20, 0x20)],
        0x2000,
    );
    assert_eq!(Image::parse(&b, EM_AARCH64, RANGE).unwrap().segments().count(), 2);
}

#[test]
fn pages_hold_the_file_bytes_zero_past_them_with_the_union_of_rights() {
    let mut b = elf(
        EM_X86_64,
        0x40_1000,
        &[load(5, 0x1000, 0x40_1000, 0x80, 0x80), load(6, 0x1080, 0x40_1080, 0x20, 0x1f80 + 0x10)],
        0x2000,
    );
    b[0x1000..0x1080].fill(0x90);
    b[0x1080..0x10a0].fill(0xaa);
    let img = Image::parse(&b, EM_X86_64, RANGE).unwrap();
    let pages = img.pages();
    let addrs: Vec<u64> = pages.iter().map(|p| p.0).collect();
    // the second segment ends at 0x40_3010: three pages
    assert_eq!(addrs, [0x40_1000, 0x40_2000, 0x40_3000]);
    let (_, first, rights) = &pages[0];
    assert_eq!(*rights, 5 | 6, "text and data share the first page");
    assert!(first[..0x80].iter().all(|&x| x == 0x90));
    assert!(first[0x80..0xa0].iter().all(|&x| x == 0xaa));
    assert!(first[0xa0..].iter().all(|&x| x == 0), "bss is zero");
    assert_eq!(pages[1].2, 6);
    assert!(pages[1].1.iter().chain(pages[2].1.iter()).all(|&x| x == 0));
    assert!(pages.iter().all(|p| p.1.len() == 4096));
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
        let _ = Image::parse(&bytes, EM_X86_64, RANGE);
    }

    #[test]
    fn mutated_good_images_never_panic_and_accepted_ones_are_consistent(
        flips in proptest::collection::vec((0usize..0x200, proptest::num::u8::ANY), 1..8)
    ) {
        let mut b = good();
        for (at, v) in flips {
            b[at] = v;
        }
        if let Ok(img) = Image::parse(&b, EM_X86_64, RANGE) {
            for s in img.segments() {
                proptest::prop_assert!(s.file_end <= b.len());
                proptest::prop_assert!(s.vaddr >= RANGE.0 && s.vaddr + s.mem_size <= RANGE.1);
                proptest::prop_assert!((s.file_end - s.file_start) as u64 <= s.mem_size);
            }
        }
    }
}

#[test]
fn an_l4re_program_shows_its_aux_descriptors_and_where_its_program_headers_are() {
    // as the L4Re make links one: text from file offset 0 (so the headers
    // are loaded), PT_PHDR, PT_L4_AUX with one KIP_ADDR descriptor
    let aux_off = 0x800u64;
    let phs = [
        Ph { ty: 6, flags: 4, offset: 64, vaddr: 0x40_0040, filesz: 4 * 56, memsz: 4 * 56 },
        load(5, 0, 0x40_0000, 0x1000, 0x1000),
        load(6, 0x1000, 0x40_1000, 0x10, 0x2000),
        Ph { ty: 0x6000_0014, flags: 4, offset: aux_off, vaddr: 0x40_0800, filesz: 24, memsz: 24 },
    ];
    let mut b = elf(EM_X86_64, 0x40_0100, &phs, 0x2000);
    for (i, w) in [4u64, 24, 0x6fff_f000].iter().enumerate() {
        let at = aux_off as usize + 8 * i;
        b[at..at + 8].copy_from_slice(&w.to_le_bytes());
    }
    let img = Image::parse(&b, EM_X86_64, RANGE).unwrap();
    let aux = rtcr_boot::l4re::Aux::parse(img.l4_aux().unwrap()).unwrap();
    assert_eq!(aux.kip_addr, Some(0x6fff_f000));
    assert_eq!(img.phdrs_in_memory(), Some((0x40_0040, 4)));
    // without PT_PHDR: found in the segment that loads file offset 64
    let mut no_phdr = b.clone();
    no_phdr[64..68].copy_from_slice(&7u32.to_le_bytes()); // PT_TLS now
    let img = Image::parse(&no_phdr, EM_X86_64, RANGE).unwrap();
    assert_eq!(img.phdrs_in_memory(), Some((0x40_0040, 4)));
    // a root-task-style child has neither
    let g = good();
    let img = Image::parse(&g, EM_X86_64, RANGE).unwrap();
    assert_eq!(img.l4_aux(), None);
    assert_eq!(img.phdrs_in_memory(), None);
}

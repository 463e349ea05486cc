//! The bare-metal `rtcr` binaries are what bootstrap can load: static ELF
//! executables (type EXEC, no PT_INTERP, no PT_DYNAMIC) for the right
//! machine, entered at the documented link address, every PT_LOAD segment
//! at or above it and physical = virtual.
//!
//! `scripts/check.sh` builds both binaries and names them in
//! `RTCR_ELF_X86_64` / `RTCR_ELF_AARCH64`; run alone, the test says it was
//! skipped.

use std::{env, fs};

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const ET_EXEC: u16 = 2;

struct Expect {
    var: &'static str,
    machine: u16,
    base: u64,
}

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

fn check(e: &Expect) {
    let Some(path) = env::var_os(e.var) else {
        eprintln!("SKIPPED: {} not set (scripts/check.sh builds the binary and sets it)", e.var);
        return;
    };
    let b = fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.to_string_lossy()));
    assert_eq!(&b[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(b[4], 2, "not ELF64");
    assert_eq!(b[5], 1, "not little-endian");
    assert_eq!(u16_at(&b, 16), ET_EXEC, "not a fixed-address executable (PIE or relocatable?)");
    assert_eq!(u16_at(&b, 18), e.machine, "wrong machine");
    assert_eq!(u64_at(&b, 24), e.base, "entry point is not the documented link address");
    let (phoff, phentsize, phnum) = (u64_at(&b, 32) as usize, u16_at(&b, 54) as usize, u16_at(&b, 56) as usize);
    let mut loads = 0;
    for i in 0..phnum {
        let p = phoff + i * phentsize;
        let ty = u32_at(&b, p);
        assert_ne!(ty, PT_INTERP, "has an interpreter");
        assert_ne!(ty, PT_DYNAMIC, "is dynamically linked");
        if ty == PT_LOAD {
            loads += 1;
            let (vaddr, paddr) = (u64_at(&b, p + 16), u64_at(&b, p + 24));
            assert_eq!(vaddr, paddr, "segment {i}: physical != virtual");
            assert!(vaddr >= e.base, "segment {i} at {vaddr:#x} below the link base");
        }
    }
    assert!(loads >= 1, "no loadable segment");
}

#[test]
fn x86_64_root_task_is_a_static_exec_at_128_mib() {
    check(&Expect { var: "RTCR_ELF_X86_64", machine: 62, base: 0x0800_0000 });
}

#[test]
fn aarch64_root_task_is_a_static_exec_at_ram_plus_128_mib() {
    check(&Expect { var: "RTCR_ELF_AARCH64", machine: 183, base: 0x4800_0000 });
}

/// Every kernel entry in the binary is l4-sys's restartable sequence, and
/// the sequence is exactly `Arch::restart_len` bytes long — the distance
/// rtcr moves a cancelled thread's IP back (a wrong length would resume a
/// child in the middle of an instruction), preceded by the entry stamp.
fn restart_sequences(var: &str, arch: l4_sys::exc::Arch, stamp: &[u8], sequence: &[u8], entry: &[u8]) {
    let Some(path) = env::var_os(var) else {
        eprintln!("SKIPPED: {var} not set (scripts/check.sh builds the binary and sets it)");
        return;
    };
    let file = fs::read(&path).unwrap();
    assert_eq!(sequence.len() as u64, arch.restart_len(), "the sequence below is what the asm assembles to");
    assert!(sequence.ends_with(entry));
    // only the code counts: data and debug info may hold any bytes
    let (machine, base) = match arch {
        l4_sys::exc::Arch::Amd64 => (62, 0x0800_0000),
        l4_sys::exc::Arch::Arm64 => (183, 0x4800_0000),
    };
    let img = rtcr_boot::elf::Image::parse(&file, machine, (base, base + (256 << 20))).unwrap();
    let mut starts = Vec::new();
    let mut svcs = Vec::new();
    for seg in img.segments().filter(|s| s.rights & 1 != 0) {
        let code = img.file_bytes(&seg);
        let at = |i: usize| seg.file_start + i;
        starts.extend(code.windows(sequence.len()).enumerate().filter(|(_, w)| *w == sequence).map(|(i, _)| at(i)));
        if entry.len() == 4 && code.len() >= 4 {
            // fixed-width code (segments start 4-aligned): every `svc #0`
            svcs.extend((0..code.len() - 3).step_by(4).filter(|&i| &code[i..i + 4] == entry).map(at));
        }
    }
    let b = &file;
    assert!(!starts.is_empty(), "no restartable kernel entry in {}", path.to_string_lossy());
    eprintln!("{var}: {} restartable kernel entries", starts.len());
    for &i in &starts {
        assert!(i >= stamp.len() && &b[i - stamp.len()..i] == stamp, "entry at {i:#x} lacks the entry stamp");
    }
    for i in &svcs {
        assert!(starts.contains(&(i + 4 - sequence.len())), "a bare svc #0 at file offset {i:#x}");
    }
    if entry.len() == 4 {
        assert_eq!(svcs.len(), starts.len(), "one svc #0 per restartable entry, none elsewhere");
    }
}

#[test]
fn x86_64_kernel_entries_are_restartable() {
    // rdtsc; shl rdx, 32; or rax, rdx; mov r14, rax (the stamp), then
    // mov rax, r9; mov rsi, r10; mov rdx, r12; mov r8, r13; syscall
    let stamp = [0x0f, 0x31, 0x48, 0xc1, 0xe2, 0x20, 0x48, 0x09, 0xd0, 0x49, 0x89, 0xc6];
    let seq = [0x4c, 0x89, 0xc8, 0x4c, 0x89, 0xd6, 0x4c, 0x89, 0xe2, 0x4d, 0x89, 0xe8, 0x0f, 0x05];
    // rtcr-core tells a thread in a kernel call by these bytes before its IP
    assert_eq!(l4_sys::exc::Arch::Amd64.restart_sequence(), seq);
    restart_sequences("RTCR_ELF_X86_64", l4_sys::exc::Arch::Amd64, &stamp, &seq, &[0x0f, 0x05]);
}

#[test]
fn aarch64_kernel_entries_are_restartable() {
    // mov x0, x4; mov x1, x5; mov x2, x6; mov x3, x7 (orr xd, xzr, xn); svc #0
    // preceded by the stamp: mrs x8, cntvct_el0
    let words: [u32; 5] = [0xaa04_03e0, 0xaa05_03e1, 0xaa06_03e2, 0xaa07_03e3, 0xd400_0001];
    let seq: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    assert_eq!(l4_sys::exc::Arch::Arm64.restart_sequence(), seq);
    let stamp = 0xd53b_e048u32.to_le_bytes();
    restart_sequences("RTCR_ELF_AARCH64", l4_sys::exc::Arch::Arm64, &stamp, &seq, &0xd400_0001u32.to_le_bytes());
}

/// The child loader's checks (rtcr-boot) accept what this toolchain builds:
/// our own root task is a static executable of the same shape a child is.
fn loader_accepts(var: &str, machine: u16, base: u64) {
    let Some(path) = env::var_os(var) else {
        eprintln!("SKIPPED: {var} not set (scripts/check.sh builds the binary and sets it)");
        return;
    };
    let b = fs::read(&path).unwrap();
    let img = rtcr_boot::elf::Image::parse(&b, machine, (base, base + (256 << 20)))
        .unwrap_or_else(|e| panic!("{}: {e}", path.to_string_lossy()));
    assert_eq!(img.entry, base);
    let segs: Vec<_> = img.segments().collect();
    assert!(segs.iter().any(|s| s.rights & 1 != 0), "an executable segment");
    assert!(segs.iter().any(|s| s.rights & 2 != 0), "a writable segment");
    // and refuses it for the other machine, or outside the child's range
    let other = if machine == 62 { 183 } else { 62 };
    assert!(rtcr_boot::elf::Image::parse(&b, other, (base, base + (256 << 20))).is_err());
    assert!(rtcr_boot::elf::Image::parse(&b, machine, (base + 0x1000, base + (256 << 20))).is_err());
}

#[test]
fn the_child_loader_accepts_our_own_x86_64_binary() {
    loader_accepts("RTCR_ELF_X86_64", 62, 0x0800_0000);
}

#[test]
fn the_child_loader_accepts_our_own_aarch64_binary() {
    loader_accepts("RTCR_ELF_AARCH64", 183, 0x4800_0000);
}

/// The children rtcr-child builds, checked as rtcr loads them: the same
/// ELF checks and the contract's address range (rtcr_boot::layout), whole
/// pages with the segments' rights, and the entry in executable memory.
fn children(var: &str, machine: u16) {
    let Some(root) = env::var_os(var) else {
        eprintln!("SKIPPED: {var} not set (scripts/check.sh builds the binaries and sets it)");
        return;
    };
    let dir = std::path::Path::new(&root).parent().unwrap().to_path_buf();
    for name in ["rtcr-demo", "rtcr-minimal"] {
        let file = fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let img = rtcr_boot::elf::Image::parse(&file, machine, rtcr_boot::layout::CHILD_RANGE)
            .unwrap_or_else(|e| panic!("{name}: rtcr would refuse it: {e}"));
        let pages = img.pages();
        assert!(!pages.is_empty(), "{name}: no pages");
        let exec = pages.iter().find(|p| img.entry >= p.0 && img.entry < p.0 + 4096).map(|p| p.2);
        assert!(exec.is_some_and(|r| r & 1 != 0), "{name}: entry {:#x} not in executable memory", img.entry);
        // text is not writable and data not executable: the segments do not share pages
        assert!(pages.iter().all(|p| p.2 & 3 != 3), "{name}: a page both writable and executable");
    }
}

#[test]
fn x86_64_children_are_what_rtcr_loads() {
    children("RTCR_ELF_X86_64", 62);
}

#[test]
fn aarch64_children_are_what_rtcr_loads() {
    children("RTCR_ELF_AARCH64", 183);
}

//! rtcr-c-child (c-child/, issue 10): a freestanding C program compiled by
//! gcc against an L4Re tree's own l4sys headers, entering the kernel only
//! through L4Re's inline `l4_ipc()` (amd64 `syscall`, arm64
//! `__l4_sys_syscall`). It is built here with scripts/build-c-child.sh into
//! a temporary directory and booted in QEMU twice per architecture: as the
//! real root task (sigma0 its pager), and under rtcr, checkpointed every 20 ms
//! and crashed every 10 s for over 60 s. It must notice nothing but the
//! crashes.
//!
//! Needs `FIASCO_OBJ_X86_64` + `L4RE_OBJ_X86_64` / `FIASCO_OBJ_ARM64` +
//! `L4RE_OBJ_ARM64` (as tests/qemu.rs), the C compiler (gcc on an x86_64
//! host or `CC_X86_64`; `aarch64-linux-gnu-gcc` or `CC_AARCH64`), rtcr's
//! release binary (`cargo build --release -p rtcr --target …`, found in
//! `$CARGO_TARGET_DIR` or target/) and qemu-system-*. Without the variables
//! or the compiler each test says SKIPPED and passes.
//!
//! Run: `cargo test --release -p rtcr --test qemu_c_child -- --nocapture --test-threads=1`

mod common;

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_no_problems, boot_rtcr, check_child_clean, check_soak_restores, qemu_boot, root, Status};

/// One architecture's names.
struct Arch {
    arch: &'static str,
    fvar: &'static str,
    lvar: &'static str,
    machine: u16,
}

const X86_64: Arch = Arch { arch: "x86_64", fvar: "FIASCO_OBJ_X86_64", lvar: "L4RE_OBJ_X86_64", machine: 62 };
const AARCH64: Arch = Arch { arch: "aarch64", fvar: "FIASCO_OBJ_ARM64", lvar: "L4RE_OBJ_ARM64", machine: 183 };

/// The C compiler scripts/build-c-child.sh uses for `a`.
fn compiler(a: &Arch) -> String {
    match a.arch {
        "x86_64" => env::var("CC_X86_64")
            .unwrap_or_else(|_| if cfg!(target_arch = "x86_64") { "gcc" } else { "x86_64-linux-gnu-gcc" }.to_string()),
        _ => env::var("CC_AARCH64").unwrap_or_else(|_| "aarch64-linux-gnu-gcc".to_string()),
    }
}

/// Whether everything for `a` is there; says SKIPPED with the reason if not.
fn ready(a: &Arch) -> bool {
    if env::var_os(a.fvar).is_none() || env::var_os(a.lvar).is_none() {
        eprintln!(
            "SKIPPED: qemu c-child {}: set {} and {} to a Fiasco and an L4Re build directory",
            a.arch, a.fvar, a.lvar
        );
        return false;
    }
    let cc = compiler(a);
    if Command::new(&cc).arg("--version").output().is_err() {
        eprintln!("SKIPPED: qemu c-child {}: the C compiler {cc} is not installed", a.arch);
        return false;
    }
    true
}

/// A temporary directory of this test's own (removed on drop).
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let d = env::temp_dir().join(format!("rtcr-c-child-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("cannot create a temporary directory");
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Builds the C child with scripts/build-c-child.sh into `dir`; its path.
/// Also checks rtcr's own ELF loader accepts it as a child and that its
/// kernel entries are L4Re's: no l4-sys restartable entry (which rtcr would
/// rewind), and on arm64 the one `svc #0` is `__l4_sys_syscall`'s, followed
/// by `ret`.
fn build_child(a: &Arch, dir: &Path) -> PathBuf {
    let out = Command::new(root().join("scripts/build-c-child.sh"))
        .args(["--arch", a.arch, "--out"])
        .arg(dir)
        .output()
        .expect("cannot run scripts/build-c-child.sh");
    assert!(
        out.status.success(),
        "build-c-child failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let elf = dir.join("rtcr-c-child");
    let file = std::fs::read(&elf).expect("the built child");
    let img = rtcr_boot::elf::Image::parse(&file, a.machine, rtcr_boot::layout::CHILD_RANGE)
        .unwrap_or_else(|e| panic!("rtcr's loader refuses {}: {e:?}", elf.display()));
    let arch = if a.arch == "x86_64" { l4_sys::exc::Arch::Amd64 } else { l4_sys::exc::Arch::Arm64 };
    let seq = arch.restart_sequence();
    let (mut restartable, mut entries, mut svcs) = (0, 0, Vec::new());
    for seg in img.segments().filter(|s| s.rights & 1 != 0) {
        let code = img.file_bytes(&seg);
        restartable += code.windows(seq.len()).filter(|w| *w == seq).count();
        if a.arch == "x86_64" {
            entries += code.windows(2).filter(|w| *w == [0x0f, 0x05]).count();
        } else {
            let words: Vec<u32> = code.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
            for (i, &w) in words.iter().enumerate() {
                if w == 0xd400_0001 {
                    svcs.push(words.get(i + 1).copied());
                }
            }
        }
    }
    assert_eq!(restartable, 0, "{}: l4-sys's restartable entry in the C child", a.arch);
    if a.arch == "x86_64" {
        assert!(entries >= 1, "x86_64: no syscall instruction (L4Re's inline l4_ipc) in the C child");
    } else {
        assert_eq!(svcs, vec![Some(0xd65f_03c0)], "aarch64: one svc #0 (__l4_sys_syscall), followed by ret");
    }
    elf
}

/// What every run must show (common::check_child_clean), and the memory in
/// the child's windows.
fn check_clean(log: &str, min_rounds: u64, problems: &mut Vec<String>) -> Vec<(usize, Status)> {
    if !log.contains("c-child: KIP received at window 0x1800000") {
        problems.push("the KIP not received in its window".into());
    }
    let ram = log.lines().filter(|l| l.contains("c-child: RAM received at window ")).count();
    if ram != 4 {
        problems.push(format!("{ram} RAM requests answered, not 4"));
    }
    let status = check_child_clean(log, "c-child", min_rounds, problems);
    if let Some((_, last)) = status.last() {
        eprintln!("last status: {last:?}");
    }
    status
}

/// As the real root task, on sigma0 and the kernel's own objects: the
/// reference run, clean for about 20 s.
fn as_root(a: &Arch, timeout: u32) {
    if !ready(a) {
        return;
    }
    let dir = TempDir::new(&format!("root-{}", a.arch));
    let elf = build_child(a, &dir.0);
    let log = qemu_boot(a.arch, "", timeout, &["--elf".into(), elf.into(), "--".into(), "c-child-as-root".into()]);
    let mut problems = Vec::new();
    check_clean(&log, 25, &mut problems);
    assert_no_problems(&problems, &log);
}

#[test]
fn x86_64_the_c_child_runs_clean_as_the_root_task() {
    as_root(&X86_64, 30);
}

#[test]
fn aarch64_the_c_child_runs_clean_as_the_root_task() {
    as_root(&AARCH64, 32);
}

/// Under rtcr, checkpointed every 20 ms for over 60 s and crashed every 10 s
/// (`crash_ms` / `crash_every_ms`): no ERROR line, one start, the counters
/// continue from the checkpoint after each restore, no early sleep, the
/// ledger intact, and rtcr's check of each restored capability space passes.
fn under_rtcr(a: &Arch, timeout: u32) {
    if !ready(a) {
        return;
    }
    let dir = TempDir::new(&format!("rtcr-{}", a.arch));
    let child = build_child(a, &dir.0);
    let log =
        boot_rtcr(a.arch, timeout, &[child], "child=rtcr-c-child interval_ms=20 crash_ms=10000 crash_every_ms=10000");
    let mut problems = Vec::new();
    if log.contains("rtcr: PANIC") || log.contains("rtcr: stopped") {
        problems.push("rtcr panicked or stopped".into());
    }
    if !log.contains("rtcr: child 'rtcr-c-child' started") {
        problems.push("rtcr did not start the child".into());
    }
    // over 60 s of 500 ms rounds, less the time the restores cost
    let status = check_clean(&log, 100, &mut problems);
    check_soak_restores(a.arch, &log, &status, &mut problems);
    assert_no_problems(&problems, &log);
}

#[test]
fn x86_64_the_c_child_notices_nothing_of_checkpoints_and_restores() {
    under_rtcr(&X86_64, 80);
}

#[test]
fn aarch64_the_c_child_notices_nothing_of_checkpoints_and_restores() {
    under_rtcr(&AARCH64, 80);
}

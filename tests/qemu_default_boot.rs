//! The default boot on a real kernel (QEMU): no diagnostics, a few lines of
//! rtcr's before the child's first, and the time from rtcr's first
//! instruction to the child's start in the log. Needs what tests/qemu.rs
//! needs (`FIASCO_OBJ_*`, `L4RE_OBJ_*`, the release rtcr and rtcr-demo, a
//! qemu-system-*); without the variables each test says SKIPPED and passes.
//!
//! Run: `cargo test -p rtcr --test qemu_default_boot -- --nocapture`

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Lines of rtcr's boot, from its first line to the child's first: at most a
/// screen.
const SCREEN: usize = 24;

/// Where cargo put the bare-metal builds (scripts/qemu-boot.sh looks there).
fn target_dir() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

/// The serial log of a boot of `args` with the demo child as a module, or
/// `None` (SKIPPED) without the build variables.
fn boot(arch: &str, fvar: &str, lvar: &str, timeout: u32, args: &str) -> Option<String> {
    if env::var_os(fvar).is_none() || env::var_os(lvar).is_none() {
        eprintln!("SKIPPED: qemu {arch}: set {fvar} and {lvar} to a Fiasco and an L4Re build directory");
        return None;
    }
    let demo = target_dir().join(format!("{arch}-unknown-none/release/rtcr-demo"));
    assert!(
        demo.exists(),
        "{} missing: cargo build --release -p rtcr-child --target {arch}-unknown-none",
        demo.display()
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("scripts/qemu-boot.sh"))
        .args(["--arch", arch, "--timeout", &timeout.to_string(), "--module"])
        .arg(&demo)
        .args(["--", args])
        .output()
        .expect("cannot run scripts/qemu-boot.sh");
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "qemu-boot failed: {}\n{log}", String::from_utf8_lossy(&out.stderr));
    Some(log)
}

/// The number after `key` in `line`.
fn num_after(line: &str, key: &str) -> u64 {
    line.split(key)
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {key:?} in {line:?}"))
}

fn default_boot(arch: &str, fvar: &str, lvar: &str, timeout: u32) {
    let Some(log) = boot(arch, fvar, lvar, timeout, "child=rtcr-demo") else { return };
    let lines: Vec<&str> = log.lines().collect();
    let first = lines.iter().position(|l| l.contains("rtcr: root task up on ")).expect("rtcr's first line");
    let child = lines[first..]
        .iter()
        .position(|l| l.starts_with("rtcr-demo: "))
        .unwrap_or_else(|| panic!("the child printed nothing:\n{log}"));
    let boot_lines = &lines[first..first + child];
    eprintln!("{arch}: rtcr's boot, {} lines before the child's first:\n{}", boot_lines.len(), boot_lines.join("\n"));
    assert!(boot_lines.len() <= SCREEN, "more than a screen before the child's first line");
    // version, configuration, the child, the store, the start
    assert!(boot_lines[0].contains(&format!("rtcr {}", env!("CARGO_PKG_VERSION"))), "{}", boot_lines[0]);
    let config = boot_lines.iter().find(|l| l.contains("rtcr: config: ")).expect("the configuration line");
    assert!(config.contains("child rtcr-demo, checkpoint every 100 ms"), "{config}");
    assert!(boot_lines.iter().any(|l| l.contains("rtcr: checkpoint store: 1024 KiB")), "the store line");
    let started = boot_lines
        .iter()
        .find(|l| l.contains("rtcr: child 'rtcr-demo' started ("))
        .expect("the child's start before its first line");
    let us = num_after(started, "pages) ");
    assert!(started.contains(" us after rtcr's start"), "{started}");
    // generous: QEMU TCG on a loaded host; the figure itself is in the log
    assert!(us > 0 && us < 5_000_000, "{started}");
    // none of the diagnostics a configuration word asks for
    for (needle, word) in [
        ("rtcr: initial caps valid", "report"),
        ("rtcr: mem ", "report"),
        ("rtcr: image self-check", "selfcheck"),
        ("rtcr: env self-check", "selfcheck"),
        ("rtcr: probe", "probe"),
    ] {
        assert!(!log.contains(needle), "'{needle}' without '{word}' on the roottask line");
    }
    // and the child is served: checkpoints follow
    assert!(log.contains("rtcr: checkpoint 1: "), "{log}");
    assert!(!log.contains("rtcr: PANIC") && !log.contains("rtcr: stopped"), "{log}");
}

#[test]
fn x86_64_default_boot_goes_straight_to_the_child() {
    default_boot("x86_64", "FIASCO_OBJ_X86_64", "L4RE_OBJ_X86_64", 10);
}

#[test]
fn aarch64_default_boot_goes_straight_to_the_child() {
    default_boot("aarch64", "FIASCO_OBJ_ARM64", "L4RE_OBJ_ARM64", 14);
}

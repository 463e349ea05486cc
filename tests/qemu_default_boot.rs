//! The default boot on a real kernel (QEMU): no diagnostics, a few lines of
//! rtcr's before the child's first, and the time from rtcr's first
//! instruction to the child's start in the log. Needs what tests/qemu.rs
//! needs (`FIASCO_OBJ_*`, `L4RE_OBJ_*`, the release rtcr and rtcr-demo, a
//! qemu-system-*); without the variables each test says SKIPPED and passes.
//!
//! Run: `cargo test -p rtcr --test qemu_default_boot -- --nocapture`

mod common;

use common::{have_kernel, num_after, qemu_boot, release_bin};

/// Lines of rtcr's boot, from its first line to the child's first: at most a
/// screen.
const SCREEN: usize = 24;

/// The serial log of a boot of `args` with the demo child as a module, or
/// `None` (SKIPPED) without the build variables.
fn boot(arch: &str, fvar: &str, lvar: &str, timeout: u32, args: &str) -> Option<String> {
    if !have_kernel(arch, fvar, lvar) {
        return None;
    }
    let demo = release_bin(arch, "rtcr-demo");
    assert!(
        demo.exists(),
        "{} missing: cargo build --release -p rtcr-child --target {arch}-unknown-none",
        demo.display()
    );
    Some(qemu_boot(arch, "", timeout, &["--module".into(), demo.into(), "--".into(), args.into()]))
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

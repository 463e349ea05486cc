//! A poisoned image on the real kernel: an image from which the child
//! crashes at once (its first thread's IP set to 0) is handed to rtcr as a
//! boot module; rtcr restores it, counts each crash before a checkpoint
//! against it, abandons it after `max_image_failures` and starts the child
//! afresh, which then runs. Needs the kernel builds named in tests/qemu.rs
//! (`FIASCO_OBJ_*`, `L4RE_OBJ_*`) and the release binaries; SKIPPED without.
//!
//! Run: `cargo test -p rtcr --test qemu_crash_loop -- --nocapture`

mod common;

use std::env;
use std::path::PathBuf;

use common::{boot_rtcr, have_kernel, release_bin};

/// Boots rtcr with the demo child and `modules`; the log.
fn boot(arch: &str, timeout: u32, modules: &[PathBuf], args: &str) -> String {
    let mut all = vec![release_bin(arch, "rtcr-demo")];
    all.extend_from_slice(modules);
    boot_rtcr(arch, timeout, &all, args)
}

fn line_index(log: &str, needle: &str) -> usize {
    log.lines().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("no line with {needle:?} in:\n{log}"))
}

fn poisoned_image_is_abandoned(arch: &str, fvar: &str, lvar: &str) {
    if !have_kernel(arch, fvar, lvar) {
        return;
    }
    // an image of the running demo, dumped on the console
    let first = boot(arch, 12, &[], "child=rtcr-demo dump_ms=3000");
    let mut r = rtcr_image::dump::Reassembler::new();
    first.lines().for_each(|l| r.feed(l));
    let (seq, image) = r.finish().expect("an image dump in the first boot's log");
    // poisoned: the first thread goes on at address 0
    let (_, mut cp) = rtcr_image::decode(&image).expect("the dumped image is valid");
    let (karch, ip) = match arch {
        "x86_64" => (l4_sys::exc::Arch::Amd64, l4_sys::exc::amd64::mr::IP),
        _ => (l4_sys::exc::Arch::Arm64, l4_sys::exc::arm64::mr::PC),
    };
    cp.threads[0].regs[ip] = 0;
    cp.threads[0].state = rtcr_image::ThreadState::Running;
    let poisoned = rtcr_core::encode_image(karch, seq, &cp).unwrap();
    let dir = env::temp_dir().join(format!("rtcr-qemu-poison-{arch}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("poisoned.img");
    std::fs::write(&img, &poisoned).unwrap();
    let log = boot(arch, 15, &[img], "child=rtcr-demo restore=poisoned.img max_image_failures=2");
    let _ = std::fs::remove_dir_all(&dir);
    // restored, crashed twice before a checkpoint, abandoned, started afresh, counting
    let restored = line_index(&log, "rtcr: child 'rtcr-demo' restored from the image");
    let first_loop = line_index(&log, &format!("since its restore from checkpoint {seq} (1. time)"));
    let second_loop = line_index(&log, &format!("since its restore from checkpoint {seq} (2. time)"));
    let abandoned = line_index(&log, &format!("rtcr: checkpoint {seq} crashed the child 2 times"));
    let afresh = line_index(&log, "rtcr: no image could be restored: the child started afresh");
    // rtcr's own lines are in the order of events; the child's prints are
    // written when served and rtcr's (defmt) after the slice, so the fresh
    // child's first line may come before rtcr's account of the loop
    assert!(
        restored < first_loop && first_loop < second_loop && second_loop <= abandoned && abandoned < afresh,
        "the steps in order:\n{log}"
    );
    assert_eq!(log.matches("demo: started").count(), 1, "one fresh start:\n{log}");
    let started = line_index(&log, "demo: started");
    let counts = log.lines().skip(started).filter(|l| l.contains("demo: count ")).count();
    assert!(counts >= 2, "the fresh child runs:\n{log}");
    let checkpoints =
        log.lines().skip(afresh).filter(|l| l.contains("rtcr: checkpoint ") && l.contains("pages copied")).count();
    assert!(checkpoints >= 5, "and is checkpointed again:\n{log}");
    // numbered on from the abandoned image (the store takes only newer ones)
    assert!(!log.contains("rtcr: checkpoint failed"), "no checkpoint refused:\n{log}");
    let first_after = log
        .lines()
        .skip(afresh)
        .find(|l| l.contains("rtcr: checkpoint ") && l.contains("pages copied"))
        .expect("a checkpoint after the fresh start");
    let n: u64 = first_after
        .split("rtcr: checkpoint ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .and_then(|n| n.parse().ok())
        .expect("its sequence");
    assert_eq!(n, seq + 1, "numbered on from checkpoint {seq}: {first_after}");
    assert_eq!(log.matches("crashed (trap").count(), 2, "no crash after the fresh start:\n{log}");
}

#[test]
fn x86_64_a_poisoned_image_is_abandoned_and_the_child_starts_afresh() {
    poisoned_image_is_abandoned("x86_64", "FIASCO_OBJ_X86_64", "L4RE_OBJ_X86_64");
}

#[test]
fn aarch64_a_poisoned_image_is_abandoned_and_the_child_starts_afresh() {
    poisoned_image_is_abandoned("aarch64", "FIASCO_OBJ_ARM64", "L4RE_OBJ_ARM64");
}

//! Boots the bare-metal rtcr in QEMU on a real Fiasco.OC and checks what it
//! prints. Needs an existing kernel and L4Re build, named per architecture:
//! `FIASCO_OBJ_X86_64` + `L4RE_OBJ_X86_64`, `FIASCO_OBJ_ARM64` +
//! `L4RE_OBJ_ARM64` (see scripts/qemu-boot.sh), the release binary
//! (`cargo build --release -p rtcr --target …`) and qemu-system-*. Without
//! the variables each test reports itself SKIPPED and passes.
//!
//! Run: `cargo test -p rtcr --test qemu -- --nocapture`

mod common;

use std::path::PathBuf;

use common::{
    assert_no_problems, boot_rtcr, check_child_clean, check_soak_restores, expect_line, have_kernel, jdb_slots,
    num_after, qemu_boot, release_bin,
};

fn boot(arch: &str, fvar: &str, lvar: &str, keys: &str, timeout: u32, args: &str) -> Option<String> {
    boot_with(arch, fvar, lvar, keys, timeout, &[], args)
}

/// Boots with extra boot modules (files).
fn boot_with(
    arch: &str,
    fvar: &str,
    lvar: &str,
    keys: &str,
    timeout: u32,
    modules: &[PathBuf],
    args: &str,
) -> Option<String> {
    boot_cpus(arch, fvar, lvar, keys, timeout, 1, modules, args)
}

/// [`boot_with`] on a machine of `cpus` CPUs.
#[allow(clippy::too_many_arguments)]
fn boot_cpus(
    arch: &str,
    fvar: &str,
    lvar: &str,
    keys: &str,
    timeout: u32,
    cpus: u32,
    modules: &[PathBuf],
    args: &str,
) -> Option<String> {
    if !have_kernel(arch, fvar, lvar) {
        return None;
    }
    let mut opts: Vec<std::ffi::OsString> = vec!["--smp".into(), cpus.to_string().into()];
    for m in modules {
        assert!(
            m.exists(),
            "{} missing: cargo build --release -p rtcr-child --target {arch}-unknown-none",
            m.display()
        );
        opts.extend(["--module".into(), m.into()]);
    }
    opts.extend(["--".into(), args.into()]);
    Some(qemu_boot(arch, keys, timeout, &opts))
}

fn check_stub(log: &str, arch: &str) {
    expect_line(log, &format!("rtcr: root task up on {arch}"));
    // the root task's initial capabilities (fact sheet §3.1): 1-7 always
    let caps = expect_line(log, "rtcr: initial caps valid:");
    assert!(caps.contains(" 1 2 3 4 5 6 7"), "{caps}");
    // sigma0 answered the KIP request with a real KIP
    expect_line(log, "rtcr: KIP at ");
    // the boot-module info names rtcr as the root task
    let rt = expect_line(log, ": Roottask ");
    assert!(rt.contains("rtcr child=none report selfcheck probe"), "{rt}");
    let cfg = expect_line(log, "rtcr: config: ");
    assert!(cfg.contains("child none, checkpoint every 100 ms"), "the defaults: {cfg}");
    // a heap from sigma0, and rtcr-image's store working on this kernel
    let heap = expect_line(log, "rtcr: heap ");
    assert!(heap.contains("16384 KiB"), "{heap}");
    let sc = expect_line(log, "rtcr: image self-check on this kernel");
    assert!(sc.contains("newest reads back equal: true"), "{sc}");
    assert!(sc.contains("falls back to sequence 1: true"), "{sc}");
    // rtcr-core's Env on this kernel (src/env.rs)
    let env = expect_line(log, "rtcr: env self-check: ");
    assert!(env.contains("memory round trip true"), "{env}");
    assert!(env.contains("stray addresses refused true"), "{env}");
    assert!(env.contains("FPU save/load") && env.contains(") true"), "{env}");
    let permille: u64 =
        env.rsplit(": ").next().and_then(|t| t.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    if arch == "aarch64" {
        // CNTVCT agrees with the kernel clock; on x86_64 under QEMU TCG the
        // TSC ran 11-33 % fast against the KIP clock (reported, not asserted)
        assert!((950..=1050).contains(&permille), "{env}");
    }
    expect_line(log, "rtcr: no child (child=none): nothing to serve, sleeping");
    assert!(!log.contains("rtcr: PANIC"), "{log}");
}

/// The verify-list answers the later C/R work relies on (src/probe.rs).
fn check_probes(log: &str) {
    let p7 = expect_line(log, "rtcr: probe 7 ");
    assert!(p7.contains("exception arrives"), "an exception on a never-run thread must arrive: {p7}");
    let p1 = expect_line(log, "rtcr: probe 1 ");
    assert!(p1.contains("worker ran: true"), "a plain send must resume a thread in an exception: {p1}");
    let p4 = expect_line(log, "rtcr: probe 4 (parent maps child UTCB)");
    assert!(p4.contains("NOT mapped"), "a parent must not be able to map a child's UTCB: {p4}");
    expect_line(log, "rtcr: probe 3 ");
    // the restartable kernel entry: a cancelled call, rewound by
    // Arch::restart_len, is issued again with its inputs (rtcr's rewind)
    let pr = expect_line(log, "rtcr: probe restart ");
    assert!(pr.contains("re-issued, timed out"), "a rewound cancelled call must be issued again: {pr}");
    assert!(pr.contains("TCR 0x7"), "the sleep was cancelled in its receive phase: {pr}");
    assert!(pr.contains("timeout still in the restart register: true"), "{pr}");
    let slept: u64 =
        pr.split("slept ").nth(1).and_then(|t| t.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or(0);
    // the worker slept 50 ms before the cut; the entry stamp lets rtcr
    // re-issue the sleep with only the 250 ms left
    // (x86_64 under QEMU TCG: the TSC runs up to a third fast against the
    // kernel clock, so the run-down may take off more than the 50 ms)
    assert!((190_000..=262_000).contains(&slept), "the re-issued sleep waits only what was left: {pr}");
    // the UTCB trampoline (src/trampoline.rs), run in a stopped thread
    let pt = expect_line(log, "rtcr: probe trampoline ");
    assert!(pt.contains("UTCB copied out exactly: true"), "{pt}");
    assert!(pt.contains("UTCB copied in exactly: true"), "{pt}");
    // FPU state to the exception handler (BDR INHERIT_FPU) and back
    // (resuming send with TRANSFER_FPU), as rtcr-core's checkpoint assumes
    let p5 = expect_line(log, "rtcr: probe 5 (FPU)");
    assert!(p5.contains(": transferred;"), "{p5}");
    assert!(p5.contains("transferred back"), "{p5}");
    expect_line(log, "rtcr: probe: done");
}

#[test]
fn x86_64_stub_boots_and_reports() {
    // Enter JDB after the probes and list the object space of the third task (rtcr):
    // the named task shows, and its slots hold the root task's initial caps.
    let keys = "@10 ESC @2 s @1 DOWN DOWN o @2";
    let Some(log) =
        boot("x86_64", "FIASCO_OBJ_X86_64", "L4RE_OBJ_X86_64", keys, 16, "child=none report selfcheck probe")
    else {
        return;
    };
    check_stub(&log, "x86_64");
    check_probes(&log);
    expect_line(&log, "[Task] {rtcr}");
    let slots = expect_line(&log, "Task    ");
    assert!(slots.contains("Factory") && slots.contains("Thread"), "{slots}");
}

#[test]
fn aarch64_stub_boots_and_reports() {
    let Some(log) = boot("aarch64", "FIASCO_OBJ_ARM64", "L4RE_OBJ_ARM64", "", 20, "child=none report selfcheck probe")
    else {
        return;
    };
    check_stub(&log, "aarch64");
    check_probes(&log);
}

#[test]
fn x86_64_a_bad_configuration_stops_with_the_reason() {
    let Some(log) = boot("x86_64", "FIASCO_OBJ_X86_64", "L4RE_OBJ_X86_64", "", 8, "child=none interval_ms=0 probe")
    else {
        return;
    };
    let e = expect_line(&log, "rtcr: configuration error: ");
    assert!(e.contains("interval_ms=0: want a number from 1 to 3600000"), "{e}");
    expect_line(&log, "rtcr: stopped");
    assert!(!log.contains("rtcr: probe: start"), "nothing runs on a bad configuration");
    assert!(!log.contains("rtcr: PANIC"), "{log}");
}

/// The demo child's binary for `arch`.
fn demo_child(arch: &str) -> PathBuf {
    release_bin(arch, "rtcr-demo")
}

/// A number after `key ` in `line`.
/// What the demo child printed: (count, gate and IRQ counts summed).
fn demo_count(line: &str) -> (u64, u64) {
    let count = num_after(line, "demo: count ");
    let rest = line.split(" gates ").nth(1).unwrap_or("");
    let sum = rest.split(|c: char| !c.is_ascii_digit()).filter_map(|n| n.parse::<u64>().ok()).sum();
    (count, sum)
}

/// The demo's per-label counts: (gates 0x100/0x200/0x300, IRQs
/// 0x1010/0x1020/0x1030).
fn demo_labels(line: &str) -> ([u64; 3], [u64; 3]) {
    let three = |key: &str| -> [u64; 3] {
        let t = line.split(key).nth(1).and_then(|t| t.split(' ').next()).unwrap_or("");
        let v: Vec<u64> = t.split('/').filter_map(|n| n.parse().ok()).collect();
        v.try_into().unwrap_or_else(|_| panic!("no {key:?} triple in {line:?}"))
    };
    (three(" gates "), three(" irqs "))
}

/// Checks 1-4 of the issue on one boot log: the child runs and counts; it
/// is checkpointed periodically; after the crash it is restored from the
/// last checkpoint and continues from there, its gates and IRQs still
/// delivering; rtcr's own slot check passes. Returns the count the child
/// had printed before each checkpoint (by sequence).
fn check_child_run(log: &str) -> std::collections::BTreeMap<u64, u64> {
    expect_line(log, "rtcr: child 'rtcr-demo' started");
    expect_line(log, "demo: threads, gates and IRQs set up");
    assert!(!log.contains("rtcr: PANIC") && !log.contains("rtcr: stopped"), "{log}");
    assert!(!log.contains("demo: BAD REPLY") && !log.contains("unexpected label"), "{log}");
    let mut last_count = 0;
    let mut at_checkpoint = std::collections::BTreeMap::new();
    let mut restored_from = None;
    let mut after_restore = Vec::new();
    let mut seqs = Vec::new();
    for l in log.lines() {
        if l.contains("demo: count ") {
            let (c, labels) = demo_count(l);
            if restored_from.is_some() {
                after_restore.push((c, labels));
            } else {
                // before the crash the counter only grows
                assert!(c >= last_count, "the counter went back without a restore: {l}");
                // and no IRQ trigger is lost to the checkpoints: each round the
                // client calls gate 0x200 and triggers the three IRQs once
                let (gates, irqs) = demo_labels(l);
                for (i, n) in irqs.iter().enumerate() {
                    assert!(n.abs_diff(gates[1]) <= 1, "IRQ {i} delivered {n} times for {} rounds: {l}", gates[1]);
                }
            }
            last_count = c;
        } else if l.contains("rtcr: checkpoint ") && l.contains(" pages copied, pause ") {
            let seq = num_after(l, "rtcr: checkpoint ");
            // sequence, pages and the pause are all there
            num_after(l, "pages copied, pause ");
            seqs.push(seq);
            if restored_from.is_none() {
                at_checkpoint.insert(seq, last_count);
            }
        } else if l.contains("rtcr: restored from checkpoint ") {
            restored_from = Some(num_after(l, "restored from checkpoint "));
        } else if l.contains("demo: started") {
            assert!(restored_from.is_none(), "the child started afresh instead of being restored");
        }
    }
    // 2. periodic: at least five checkpoints, numbered in order
    assert!(seqs.len() >= 5, "{seqs:?}");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    // 3. the crash and the restore from the last checkpoint before it
    expect_line(log, "rtcr: test hook crash_ms");
    expect_line(log, "rtcr: child thread 0 crashed");
    let from = restored_from.expect("no restore in the log");
    let last_before = *at_checkpoint.keys().last().unwrap();
    assert_eq!(from, last_before, "restored from the newest checkpoint");
    let at_cut = at_checkpoint[&from];
    assert!(after_restore.len() >= 3, "the restored child keeps counting: {after_restore:?}");
    let (first, labels_first) = after_restore[0];
    // at_cut is the count printed last before the checkpoint's line; the
    // line is rtcr's (defmt, written out after the slice it was taken in)
    // and the prints are the child's (written when rtcr serves them, which
    // a cut may do while it waits for a blocked thread), so the two are in
    // order only to within a print either way
    assert!(
        first + 64 >= at_cut && first <= at_cut + 128,
        "continues from the checkpoint's {at_cut} (within a print), printed {first}"
    );
    let (last, labels_last) = *after_restore.last().unwrap();
    assert!(last > first && labels_last > labels_first, "gates and IRQs keep delivering: {after_restore:?}");
    // 4. rtcr's own check of the restored capability space
    let v = expect_line(log, "rtcr: slots verified: ");
    let (good, total) = (num_after(&v, "verified: "), num_after(&v, "/"));
    assert!(good == total && total >= 20, "{v}");
    at_checkpoint
}

/// Check 6: the image dumped on the console goes back together, and a
/// fresh boot with it as a module restores the child, which counts on.
fn check_migration(
    arch: &str,
    fvar: &str,
    lvar: &str,
    timeout: u32,
    first_log: &str,
    counts: &std::collections::BTreeMap<u64, u64>,
) {
    let mut r = rtcr_image::dump::Reassembler::new();
    first_log.lines().for_each(|l| r.feed(l));
    let (seq, image) = r.finish().expect("an image dump in the first boot's log");
    rtcr_image::decode(&image).expect("the dumped image is valid");
    let dir = std::env::temp_dir().join(format!("rtcr-qemu-{arch}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("migrated.img");
    std::fs::write(&img, &image).unwrap();
    let log =
        boot_with(arch, fvar, lvar, "", timeout, &[demo_child(arch), img], "child=rtcr-demo restore=migrated.img")
            .expect("the first boot ran, so the second can");
    let _ = std::fs::remove_dir_all(&dir);
    expect_line(&log, "rtcr: image module 'migrated.img'");
    expect_line(&log, "rtcr: child 'rtcr-demo' restored from the image");
    assert_slots_verified(&log);
    assert!(!log.contains("demo: started"), "the migrated child must not start afresh");
    let printed: Vec<u64> = log.lines().filter(|l| l.contains("demo: count ")).map(|l| demo_count(l).0).collect();
    // the dumped checkpoint may have been taken after the first boot's restore
    let at_cut = counts.get(&seq).copied().unwrap_or(0);
    assert!(printed.len() >= 3, "the migrated child counts: {printed:?}");
    assert!(printed[0] >= at_cut && printed.windows(2).all(|w| w[1] > w[0]), "{printed:?} from {at_cut}");

    // a damaged image is refused with the reason, and the child starts afresh
    let dir = std::env::temp_dir().join(format!("rtcr-qemu-{arch}-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("damaged.img");
    let mut damaged = image.clone();
    let at = damaged.len() / 2;
    damaged[at] ^= 0x20;
    std::fs::write(&bad, &damaged).unwrap();
    let log = boot_with(arch, fvar, lvar, "", timeout, &[demo_child(arch), bad], "child=rtcr-demo restore=damaged.img")
        .expect("the first boot ran, so this one can");
    let _ = std::fs::remove_dir_all(&dir);
    let why = expect_line(&log, "rtcr: image module 'damaged.img' refused, the child starts afresh: ");
    assert!(why.contains("checksum"), "the reason names the damage: {why}");
    expect_line(&log, "demo: started");
    expect_line(&log, "rtcr: child 'rtcr-demo' started");
}

#[test]
fn x86_64_child_is_checkpointed_crashes_is_restored_and_migrates() {
    let args = "child=rtcr-demo crash_ms=3000 dump_ms=5000";
    let (f, l) = ("FIASCO_OBJ_X86_64", "L4RE_OBJ_X86_64");
    let Some(log) = boot_with("x86_64", f, l, "", 20, &[demo_child("x86_64")], args) else { return };
    let counts = check_child_run(&log);
    check_migration("x86_64", f, l, 16, &log, &counts);
}

#[test]
fn aarch64_child_is_checkpointed_crashes_is_restored_and_migrates() {
    let args = "child=rtcr-demo crash_ms=3000 dump_ms=5000";
    let (f, l) = ("FIASCO_OBJ_ARM64", "L4RE_OBJ_ARM64");
    let Some(log) = boot_with("aarch64", f, l, "", 28, &[demo_child("aarch64")], args) else { return };
    let counts = check_child_run(&log);
    check_migration("aarch64", f, l, 24, &log, &counts);
}

/// The child contract: a program written as a Fiasco root task (rtcr-minimal
/// uses only slots 1-7 and the sigma0 protocol) runs unchanged both as the
/// real root task and as rtcr's child, and survives a crash there.
fn minimal_child(arch: &str, fvar: &str, lvar: &str, timeout: u32) {
    let bin = release_bin(arch, "rtcr-minimal");
    if !have_kernel(arch, fvar, lvar) {
        return;
    }
    // as the root task, on sigma0 and the kernel's own objects
    let as_root =
        qemu_boot(arch, "", timeout, &["--elf".into(), bin.clone().into(), "--".into(), "minimal-as-root".into()]);
    expect_line(&as_root, "minimal: hello");
    assert!(expect_line(&as_root, "minimal: caps valid:").contains("1 2 3 4 5 6 7"));
    expect_line(&as_root, "minimal: tick 3 ");
    // as rtcr's child, crashed and restored
    let log = boot_with(arch, fvar, lvar, "", timeout, &[bin], "child=rtcr-minimal crash_ms=2000").unwrap();
    expect_line(&log, "rtcr-minimal: minimal: hello");
    assert!(expect_line(&log, "rtcr-minimal: minimal: caps valid:").contains("1 2 3 4 5 6 7"));
    expect_line(&log, "rtcr-minimal: minimal: KIP at ");
    let ram = expect_line(&log, "rtcr-minimal: minimal: RAM page at ");
    assert!(ram.contains(&format!("{:#x}", rtcr_boot::layout::SIGMA0_RANGE.0)), "{ram}");
    let from = num_after(&expect_line(&log, "rtcr: restored from checkpoint "), "checkpoint ");
    let v = expect_line(&log, "rtcr: slots verified: ");
    assert_eq!(num_after(&v, "verified: "), num_after(&v, "/"), "{v}");
    // the ticks go on from the checkpoint, not from 1
    let mut at_cut = None;
    let mut last = 0;
    let mut after = Vec::new();
    for l in log.lines() {
        if l.contains("minimal: tick ") {
            last = num_after(l, "minimal: tick ");
            if at_cut.is_some() {
                after.push(last);
            }
        } else if l.contains(&format!("rtcr: checkpoint {from}:")) {
            at_cut = Some(last);
        } else if l.contains("rtcr: restored from") {
            after.clear();
        }
    }
    let at_cut = at_cut.expect("the checkpoint restored from is in the log");
    // (the counter may be one ahead of the last tick printed before the cut)
    assert!(after.len() >= 3 && after[0] >= at_cut && after[0] <= at_cut + 2, "{after:?} from {at_cut}");
    assert!(!log.contains("rtcr: PANIC") && !log.contains("rtcr: stopped"), "{log}");
}

#[test]
fn x86_64_a_root_task_program_runs_unchanged_as_a_child() {
    minimal_child("x86_64", "FIASCO_OBJ_X86_64", "L4RE_OBJ_X86_64", 12);
}

#[test]
fn aarch64_a_root_task_program_runs_unchanged_as_a_child() {
    minimal_child("aarch64", "FIASCO_OBJ_ARM64", "L4RE_OBJ_ARM64", 18);
}

/// Check 5: the child's object space in JDB right before the checkpoint
/// and right after the restore from it: the same slots, the same types.
/// rtcr enters JDB itself at both moments (`jdb` on its line); the keys
/// wait for its marker, then open the object space of the fourth task
/// (KERNEL, sigma0, rtcr, the child) and continue.
fn jdb_dumps(arch: &str, fvar: &str, lvar: &str, timeout: u32) {
    let view = "@2 s @1 DOWN DOWN DOWN o @3 ESC @1 ESC @1 g";
    let keys = format!("?jdb-before-checkpoint {view} ?jdb-after-restore {view}");
    let Some(log) =
        boot_with(arch, fvar, lvar, &keys, timeout, &[demo_child(arch)], "child=rtcr-demo crash_ms=2000 jdb")
    else {
        return;
    };
    let tail = || log.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    let Some(before_at) = log.find("user \"rtcr: jdb-before-checkpoint") else {
        panic!("rtcr did not enter JDB before the checkpoint; the log ends:\n{}", tail())
    };
    let Some(after_at) = log.find("user \"rtcr: jdb-after-restore") else {
        panic!("rtcr did not enter JDB after the restore; the log ends:\n{}", tail())
    };
    assert!(before_at < after_at);
    let before = jdb_slots(&log[before_at..after_at]);
    let after = jdb_slots(&log[after_at..]);
    eprintln!("JDB object space of the child, before the checkpoint: {before:x?}");
    eprintln!("JDB object space of the child, after the restore:     {after:x?}");
    // slots 1-7, the three threads, gates and IRQs of the demo
    for s in [1, 2, 3, 4, 5, 6, 7, 0x10, 0x11, 0x12, 0x20, 0x21, 0x22, 0x30, 0x31, 0x32] {
        assert!(before.contains_key(&s), "slot {s:#x} missing before the checkpoint: {before:x?}");
    }
    assert_eq!(before, after, "the same slots with the same types after the restore");
    let from = num_after(&expect_line(&log, "rtcr: restored from checkpoint "), "checkpoint ");
    let v = expect_line(&log, "rtcr: slots verified: ");
    assert_eq!(num_after(&v, "verified: "), num_after(&v, "/"), "{v}");
    assert!(
        log[before_at..after_at].contains(&format!("rtcr: checkpoint {from}:")),
        "restored from the JDB checkpoint"
    );
}

#[test]
fn x86_64_jdb_shows_the_same_object_space_before_the_checkpoint_and_after_the_restore() {
    // generous: QEMU runs until the timeout, and under a loaded machine
    // (the other QEMU tests at the same time) a boot takes twice as long
    jdb_dumps("x86_64", "FIASCO_OBJ_X86_64", "L4RE_OBJ_X86_64", 75);
}

#[test]
fn aarch64_jdb_shows_the_same_object_space_before_the_checkpoint_and_after_the_restore() {
    jdb_dumps("aarch64", "FIASCO_OBJ_ARM64", "L4RE_OBJ_ARM64", 95);
}

// ---- rtcr-foreign: a child whose kernel entries are its own (issue 10) ----

/// As the real root task (sigma0 its pager, the kernel's own objects): the
/// reference run, clean for 20 s.
fn foreign_as_root(arch: &str, fvar: &str, lvar: &str, timeout: u32) {
    if !have_kernel(arch, fvar, lvar) {
        return;
    }
    let bin = release_bin(arch, "rtcr-foreign");
    assert!(
        bin.exists(),
        "{} missing: cargo build --release -p rtcr-child --target {arch}-unknown-none",
        bin.display()
    );
    let log = qemu_boot(arch, "", timeout, &["--elf".into(), bin.into(), "--".into(), "foreign-as-root".into()]);
    let mut problems = Vec::new();
    // the KIP and the RAM in the windows the child chose
    if !log.contains("foreign: KIP received at window 0x1800000") {
        problems.push("the KIP not received in its window".into());
    }
    let ram = log.lines().filter(|l| l.contains("foreign: RAM received at window ")).count();
    if ram != 4 {
        problems.push(format!("{ram} RAM requests answered, not 4"));
    }
    // 20 s of 500 ms rounds
    check_child_clean(&log, "foreign", 40, &mut problems);
    assert_no_problems(&problems, &log);
}

#[test]
fn x86_64_the_foreign_entry_child_runs_clean_as_the_root_task() {
    foreign_as_root("x86_64", "FIASCO_OBJ_X86_64", "L4RE_OBJ_X86_64", 30);
}

#[test]
fn aarch64_the_foreign_entry_child_runs_clean_as_the_root_task() {
    foreign_as_root("aarch64", "FIASCO_OBJ_ARM64", "L4RE_OBJ_ARM64", 32);
}

/// Under rtcr, checkpointed every 20 ms for 60 s and crashed every 10 s
/// (the `crash_ms` / `crash_every_ms` test hook): the child must not notice
/// anything but the crashes — no ERROR line, one start, the counters
/// continue from the checkpoint after each restore, no early sleep, the
/// ledger intact — and rtcr's check of each restored capability space
/// passes.
fn foreign_under_rtcr(arch: &str, fvar: &str, lvar: &str, timeout: u32) {
    if !have_kernel(arch, fvar, lvar) {
        return;
    }
    let child = release_bin(arch, "rtcr-foreign");
    let log =
        boot_rtcr(arch, timeout, &[child], "child=rtcr-foreign interval_ms=20 crash_ms=10000 crash_every_ms=10000");
    let mut problems = Vec::new();
    if log.contains("rtcr: PANIC") || log.contains("rtcr: stopped") {
        problems.push("rtcr panicked or stopped".into());
    }
    if !log.contains("rtcr: child 'rtcr-foreign' started") {
        problems.push("rtcr did not start the child".into());
    }
    // about 500 ms a round (25 sleeps of 20 ms, and the work between)
    let status = check_child_clean(&log, "foreign", 100, &mut problems);
    check_soak_restores(arch, &log, &status, &mut problems);
    assert_no_problems(&problems, &log);
}

#[test]
fn x86_64_the_foreign_entry_child_notices_nothing_of_checkpoints_and_a_restore() {
    foreign_under_rtcr("x86_64", "FIASCO_OBJ_X86_64", "L4RE_OBJ_X86_64", 88);
}

#[test]
fn aarch64_the_foreign_entry_child_notices_nothing_of_checkpoints_and_a_restore() {
    foreign_under_rtcr("aarch64", "FIASCO_OBJ_ARM64", "L4RE_OBJ_ARM64", 80);
}

/// rtcr-foreign's kernel entries really are its own: its code holds none of
/// l4-sys's restartable sequence (rtcr would rewind a thread found after
/// one), nor the entry stamp; on arm64 the one `svc #0` is the out-of-line
/// `svc #0; ret`. Needs no kernel, only the built binaries.
#[test]
fn the_foreign_entry_child_has_no_restartable_kernel_entry() {
    use l4_sys::exc::Arch;
    for (arch, machine, a) in [("x86_64", 62, Arch::Amd64), ("aarch64", 183, Arch::Arm64)] {
        let bin = release_bin(arch, "rtcr-foreign");
        let Ok(file) = std::fs::read(&bin) else {
            eprintln!(
                "SKIPPED: {} not built (cargo build --release -p rtcr-child --target {arch}-unknown-none)",
                bin.display()
            );
            continue;
        };
        let img = rtcr_boot::elf::Image::parse(&file, machine, rtcr_boot::layout::CHILD_RANGE).unwrap();
        let seq = a.restart_sequence();
        let (mut restartable, mut svcs, mut syscalls) = (0, Vec::new(), 0);
        for seg in img.segments().filter(|s| s.rights & 1 != 0) {
            let code = img.file_bytes(&seg);
            restartable += code.windows(seq.len()).filter(|w| *w == seq).count();
            match a {
                Arch::Amd64 => {
                    syscalls += code.windows(2).filter(|w| *w == [0x0f, 0x05]).count();
                    // rdtsc; shl rdx, 32: l4-sys's entry stamp
                    let stamp = [0x0f, 0x31, 0x48, 0xc1, 0xe2, 0x20];
                    assert_eq!(code.windows(6).filter(|w| *w == stamp).count(), 0, "{arch}: l4-sys's entry stamp");
                }
                Arch::Arm64 => {
                    let words: Vec<u32> =
                        code.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect();
                    for (i, &w) in words.iter().enumerate() {
                        if w == 0xd400_0001 {
                            svcs.push(words.get(i + 1).copied());
                        }
                    }
                }
            }
        }
        assert_eq!(restartable, 0, "{arch}: l4-sys's restartable entry in {}", bin.display());
        match a {
            Arch::Amd64 => assert!(syscalls >= 1, "{arch}: no syscall instruction"),
            Arch::Arm64 => assert_eq!(svcs, vec![Some(0xd65f_03c0)], "{arch}: one svc #0, followed by ret"),
        }
    }
}

// ---- issue 13: a child on four CPUs ------------------------------------------------

/// One status line of rtcr-smp: (round, calls, served, delivered, triggers,
/// writes, placement checks passed per thread, problems).
#[derive(Clone, Copy, Debug)]
struct SmpRound {
    calls: u64,
    served: u64,
    delivered: u64,
    triggers: u64,
    writes: u64,
    on_cpu: [u64; 4],
    problems: u64,
    send_timeouts: u64,
}

fn smp_round(line: &str) -> SmpRound {
    let irqs = line.split(" irqs ").nth(1).and_then(|t| t.split(' ').next()).unwrap_or("");
    let (d, t) = irqs.split_once('/').unwrap_or_else(|| panic!("no irqs d/t in {line:?}"));
    let on: Vec<u64> = line
        .split(" on-cpu ")
        .nth(1)
        .unwrap_or("")
        .split(' ')
        .take(4)
        .map(|n| n.parse().unwrap_or_else(|_| panic!("no on-cpu counts in {line:?}")))
        .collect();
    SmpRound {
        calls: num_after(line, " calls "),
        served: num_after(line, " served "),
        delivered: d.parse().unwrap(),
        triggers: t.parse().unwrap(),
        writes: num_after(line, " writes "),
        on_cpu: on.try_into().unwrap(),
        problems: num_after(line, " problems "),
        send_timeouts: num_after(line, "(send timeouts "),
    }
}

/// The child's own checks on every status line: no problem (a call lost or
/// made twice, an IRQ lost or delivered twice, the writer's pages out of
/// step with its mirror, a thread found off its CPU), calls answered and
/// IRQs delivered exactly once (to within the one in flight); the rounds.
fn smp_rounds(log: &str) -> Vec<SmpRound> {
    assert!(!log.contains("smp: PROBLEM"), "{log}");
    assert!(!log.contains("rtcr: PANIC") && !log.contains("rtcr: stopped") && !log.contains("crash loop"), "{log}");
    let rounds: Vec<SmpRound> = log.lines().filter(|l| l.contains("smp: round ")).map(smp_round).collect();
    for r in &rounds {
        assert_eq!(r.problems, 0, "{r:?}");
        // no trigger found rtcr's IRQ proxy without a receiver (the fast path)
        assert_eq!(r.send_timeouts, 0, "{r:?}");
        assert!(r.served.abs_diff(r.calls) <= 1, "calls answered exactly once: {r:?}");
        assert!(r.triggers - r.delivered <= 1 && r.delivered <= r.triggers, "IRQs exactly once: {r:?}");
    }
    rounds
}

/// When (s) rtcr logged the first and the last checkpoint, and how many.
fn checkpoint_span(log: &str) -> (f64, f64, usize) {
    let at: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("rtcr: checkpoint ") && l.contains(" pages copied, pause "))
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    (at.first().copied().unwrap_or(0.0), at.last().copied().unwrap_or(0.0), at.len())
}

/// rtcr's check of the restored capability space passed, slot for slot.
fn assert_slots_verified(log: &str) {
    let v = expect_line(log, "rtcr: slots verified: ");
    assert_eq!(num_after(&v, "verified: "), num_after(&v, "/"), "{v}");
}

/// Issue 13's check on `arch`: rtcr-smp on four CPUs, checkpointed every
/// 20 ms for more than a minute with a crash and its restore between, then
/// the image dumped at the end restored on a boot with two CPUs.
fn smp_child(arch: &str, fvar: &str, lvar: &str, timeout: u32) {
    if !have_kernel(arch, fvar, lvar) {
        return;
    }
    let child = release_bin(arch, "rtcr-smp");
    assert!(
        child.exists(),
        "{} missing: cargo build --release -p rtcr-child --target {arch}-unknown-none",
        child.display()
    );
    // servers on other CPUs answer late when QEMU's four emulated CPUs
    // share two host cores: a settle time that covers that, so that calls
    // stay exactly-once (README, settle_ms); the dump (about 100 KB of hex
    // on a serial line that the four CPUs' emulation slows down) well
    // before the end
    let args = "child=rtcr-smp interval_ms=20 settle_ms=100 crash_ms=30000 dump_ms=40000";
    let boot = |cpus: u32, timeout: u32, modules: &[PathBuf], args: &str| {
        boot_cpus(arch, fvar, lvar, "", timeout, cpus, modules, args).expect("the kernel is there")
    };
    let log = boot(4, timeout, std::slice::from_ref(&child), args);
    common::keep_log(&format!("smp-{arch}"), &log);
    expect_line(&log, "smp: CPUs 0xf: server on 1, client on 2, irq waiter on 0, writer on 3");
    let rounds = smp_rounds(&log);
    // checkpoints every 20 ms over more than a minute
    let (first, last, n) = checkpoint_span(&log);
    assert!(last - first >= 60.0 && n >= 500, "checkpoints from {first} s to {last} s, {n} of them");
    // the crash, and the restore onto the same CPUs
    expect_line(&log, "rtcr: child thread 0 crashed");
    expect_line(&log, "rtcr: restored from checkpoint ");
    let cpus = expect_line(&log, "rtcr: restored threads on CPUs ");
    assert!(cpus.contains("[0, 1, 2, 0, 3]"), "main, server, client, waiter, writer: {cpus}");
    assert_slots_verified(&log);
    // every thread kept working, and kept finding itself on its CPU, after the restore
    let after = log.find("rtcr: restored from checkpoint ").unwrap();
    let later = smp_rounds(&log[after..]);
    let (a, b) = (later.first().expect("rounds after the restore"), later.last().unwrap());
    assert!(b.calls > a.calls && b.delivered > a.delivered && b.writes > a.writes, "{a:?} .. {b:?}");
    assert!((0..4).all(|i| b.on_cpu[i] > a.on_cpu[i]), "placement checks after the restore: {a:?} .. {b:?}");
    assert!(rounds.len() >= 60, "{} status lines", rounds.len());

    // the migration image on an ECU with two CPUs
    let (_, image) = common::dumped_image(&log);
    let (_, cp) = rtcr_image::decode(&image).expect("the dumped image is valid");
    let placed: Vec<(u32, u32)> = cp.placement.iter().map(|p| (p.thread, p.cpu)).collect();
    assert_eq!(placed, [(0, 0), (1, 1), (2, 2), (3, 0), (4, 3)], "the image records each thread's CPU");
    let dir = std::env::temp_dir().join(format!("rtcr-qemu-smp-{arch}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("smp.img");
    std::fs::write(&img, &image).unwrap();
    let log2 = boot(2, 30, &[child, img], "child=rtcr-smp restore=smp.img interval_ms=20 settle_ms=100");
    let _ = std::fs::remove_dir_all(&dir);
    common::keep_log(&format!("smp-{arch}-2cpus"), &log2);
    expect_line(&log2, "rtcr: child 'rtcr-smp' restored from the image");
    expect_line(&log2, "rtcr: thread 2 ran on CPU 2, which is not online here (online 0x3): it runs on CPU 0");
    expect_line(&log2, "rtcr: thread 4 ran on CPU 3, which is not online here (online 0x3): it runs on CPU 1");
    let cpus = expect_line(&log2, "rtcr: restored threads on CPUs ");
    assert!(cpus.contains("[0, 1, 0, 0, 1]"), "{cpus}");
    assert_slots_verified(&log2);
    assert!(!log2.contains("smp: started"), "the migrated child must not start afresh");
    expect_line(&log2, "smp: client asked for CPU 2, which is not online here");
    let moved = smp_rounds(&log2);
    assert!(moved.len() >= 5, "the migrated child works on: {moved:?}");
    let (a, b) = (moved[0], *moved.last().unwrap());
    assert!(b.calls > a.calls && b.delivered > a.delivered && b.writes > a.writes, "{a:?} .. {b:?}");
    // the server and the IRQ waiter stayed on CPUs 1 and 0, and still find themselves there
    assert!(b.on_cpu[0] > a.on_cpu[0] && b.on_cpu[2] > a.on_cpu[2], "{a:?} .. {b:?}");
}

#[test]
fn x86_64_a_child_on_four_cpus_is_checkpointed_restored_and_migrates_to_two() {
    smp_child("x86_64", "FIASCO_OBJ_X86_64", "L4RE_OBJ_X86_64", 100);
}

#[test]
fn aarch64_a_child_on_four_cpus_is_checkpointed_restored_and_migrates_to_two() {
    smp_child("aarch64", "FIASCO_OBJ_ARM64", "L4RE_OBJ_ARM64", 105);
}

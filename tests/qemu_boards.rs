//! The board machines QEMU emulates, each with a Fiasco and an L4Re built
//! for its own platform (boot/BOARDS.md): the Raspberry Pi 4B (`-M raspi4b`:
//! BCM2711, Cortex-A72, GIC-400, the mini-UART, RAM from 0, rtcr linked at
//! 0x0800_0000) and the NXP i.MX 8M Plus EVK (`-M imx8mp-evk`: Cortex-A53,
//! GICv3, the i.MX UART, RAM from 0x4000_0000). On each, the demo child is
//! checkpointed, crashes and is restored with its capability space checked
//! by rtcr and seen equal in JDB; and an image dumped on QEMU `virt` is
//! restored there, the counter going on.
//!
//! Needs `FIASCO_OBJ_RPI4` + `L4RE_OBJ_RPI4` (Fiasco `PF_RPI_RPI4`, L4Re
//! `PLATFORM_TYPE=rpi`), `FIASCO_OBJ_IMX8MP` + `L4RE_OBJ_IMX8MP` (Fiasco
//! `PF_IMX_8M`, L4Re `PLATFORM_TYPE=imx8m`), for the migration also the
//! `virt` pair `FIASCO_OBJ_ARM64` + `L4RE_OBJ_ARM64`; the aarch64 release
//! binaries (`cargo build --release -p rtcr -p rtcr-child --target
//! aarch64-unknown-none`; scripts/qemu-boot.sh builds rtcr linked for the Pi
//! itself) and qemu-system-aarch64 (QEMU >= 9.0 has both machines). Without
//! the variables each test says SKIPPED and passes.
//!
//! Run: `cargo test -p rtcr --test qemu_boards -- --test-threads 1 --nocapture`

mod common;

use std::ffi::OsString;
use std::path::PathBuf;

use common::{
    demo_count, dumped_image, expect_line, have_kernel, jdb_slots, keep_log, num_after, pause_and_restore_us,
    qemu_boot, release_bin,
};

/// A board machine and the variables naming its builds.
struct Board {
    machine: &'static str,
    fvar: &'static str,
    lvar: &'static str,
}

const RPI4: Board = Board { machine: "raspi4b", fvar: "FIASCO_OBJ_RPI4", lvar: "L4RE_OBJ_RPI4" };
const IMX8MP: Board = Board { machine: "imx8mp-evk", fvar: "FIASCO_OBJ_IMX8MP", lvar: "L4RE_OBJ_IMX8MP" };

/// Boots rtcr on `machine` (scripts/qemu-boot.sh `--machine`) with the demo
/// child and `images` as modules, typing `keys`; the log.
fn boot_board(machine: &str, keys: &str, timeout: u32, images: &[PathBuf], args: &str) -> String {
    let demo = release_bin("aarch64", "rtcr-demo");
    let mut opts: Vec<OsString> = vec!["--machine".into(), machine.into()];
    for m in std::iter::once(&demo).chain(images) {
        assert!(
            m.exists(),
            "{} missing: cargo build --release -p rtcr -p rtcr-child --target aarch64-unknown-none",
            m.display()
        );
        opts.extend(["--module".into(), m.into()]);
    }
    opts.extend(["--".into(), args.into()]);
    qemu_boot("aarch64", keys, timeout, &opts)
}

/// The lines of `log` with the demo's count, as (line index, count).
fn counts(log: &str) -> Vec<(usize, u64)> {
    log.lines().enumerate().filter_map(|(i, l)| demo_count(l).map(|c| (i, c))).collect()
}

/// rtcr's pause and restore figures on `machine`, printed (emulator figures,
/// never asserted).
fn say_figures(machine: &str, log: &str) {
    let (pauses, restores) = pause_and_restore_us(log);
    let first = pauses.first().copied().unwrap_or(0);
    let mut rest: Vec<u64> = pauses.iter().skip(1).copied().collect();
    rest.sort_unstable();
    let median = rest.get(rest.len() / 2).copied().unwrap_or(0);
    let max = rest.last().copied().unwrap_or(0);
    eprintln!(
        "{machine}: {} checkpoints, pause first {first} us, then median {median} us, max {max} us; restores {restores:?} us",
        pauses.len()
    );
}

/// The JDB keys that list the fourth task's object space (KERNEL, sigma0,
/// rtcr, the child) and go on, as in tests/qemu.rs.
const JDB_VIEW: &str = "@2 s @1 DOWN DOWN DOWN o @3 ESC @1 ESC @1 g";

/// On `board`: the demo runs and is checkpointed every 100 ms; at 3 s rtcr
/// enters JDB (the child's object space is dumped), takes a checkpoint and
/// sends the child's first thread to address 0; the crash is caught, the
/// child is restored from that checkpoint, rtcr's slot check passes, JDB
/// shows the same object space again, and the counter goes on from the
/// checkpoint with gates and IRQs delivering.
fn demo_restored_and_jdb_equal(board: &Board, timeout: u32) {
    if !have_kernel(board.machine, board.fvar, board.lvar) {
        return;
    }
    let m = board.machine;
    let keys = format!("?jdb-before-checkpoint {JDB_VIEW} ?jdb-after-restore {JDB_VIEW}");
    let log = boot_board(m, &keys, timeout, &[], "child=rtcr-demo crash_ms=3000 jdb");
    keep_log(&format!("{m}-demo-jdb"), &log);
    let tail = || log.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
    for bad in ["rtcr: PANIC", "rtcr: stopped", "demo: BAD REPLY", "unexpected label"] {
        assert!(!log.contains(bad), "{m}: {bad:?} in the log:\n{log}");
    }
    expect_line(&log, "rtcr: root task up on aarch64");
    expect_line(&log, "rtcr: child 'rtcr-demo' started");
    expect_line(&log, "demo: threads, gates and IRQs set up");

    // periodic checkpoints, numbered in order, before the crash
    let lines: Vec<&str> = log.lines().collect();
    let crash_at = lines
        .iter()
        .position(|l| l.contains("rtcr: test hook crash_ms"))
        .unwrap_or_else(|| panic!("{m}: the crash hook never fired; the log ends:\n{}", tail()));
    let seqs: Vec<(usize, u64)> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.contains("rtcr: checkpoint ") && l.contains(" pages copied, pause "))
        .map(|(i, l)| (i, num_after(l, "rtcr: checkpoint ")))
        .collect();
    let before: Vec<u64> = seqs.iter().filter(|(i, _)| *i < crash_at).map(|s| s.1).collect();
    assert!(before.len() >= 5, "{m}: checkpoints before the crash: {before:?}");
    assert!(seqs.windows(2).all(|w| w[1].1 == w[0].1 + 1), "{m}: numbered in order: {seqs:?}");

    // the crash, the restore from the newest checkpoint (the one taken in
    // the JDB hook), rtcr's own slot check
    expect_line(&log, "rtcr: child thread 0 crashed");
    let restored = lines
        .iter()
        .position(|l| l.contains("rtcr: restored from checkpoint "))
        .unwrap_or_else(|| panic!("{m}: no restore; the log ends:\n{}", tail()));
    let from = num_after(lines[restored], "restored from checkpoint ");
    assert_eq!(
        Some(&from),
        before.last(),
        "{m}: restored from the newest checkpoint before the crash hook (the one taken in the JDB hook):\n{}",
        lines[crash_at.saturating_sub(4)..=restored].join("\n")
    );
    assert_eq!(log.matches("demo: started").count(), 1, "{m}: the child started afresh instead of being restored");
    let v = expect_line(&log, "rtcr: slots verified: ");
    let (good, total) = (num_after(&v, "verified: "), num_after(&v, "/"));
    assert!(good == total && total >= 20, "{m}: {v}");
    // one crash (the hook's), one restore, nothing else going wrong
    let crashes = log.lines().filter(|l| l.contains("rtcr: child thread ") && l.contains(" crashed")).count();
    let restores = log.matches("rtcr: restored from checkpoint ").count();
    assert!(
        crashes == 1 && restores == 1 && !log.contains("rtcr: crash loop") && !log.contains("failed"),
        "{m}: {crashes} crashes, {restores} restores (want one each), or a crash loop or a failure:\n{}",
        tail()
    );

    // JDB: the same slots with the same types before the checkpoint and
    // after the restore
    let Some(jdb_before) = log.find("user \"rtcr: jdb-before-checkpoint") else {
        panic!("{m}: rtcr did not enter JDB before the checkpoint; the log ends:\n{}", tail())
    };
    let Some(jdb_after) = log.find("user \"rtcr: jdb-after-restore") else {
        panic!("{m}: rtcr did not enter JDB after the restore; the log ends:\n{}", tail())
    };
    assert!(jdb_before < jdb_after);
    let slots_before = jdb_slots(&log[jdb_before..jdb_after]);
    let slots_after = jdb_slots(&log[jdb_after..]);
    eprintln!("{m}: JDB object space of the child, before the checkpoint: {slots_before:x?}");
    eprintln!("{m}: JDB object space of the child, after the restore:     {slots_after:x?}");
    for s in [1, 2, 3, 4, 5, 6, 7, 0x10, 0x11, 0x12, 0x20, 0x21, 0x22, 0x30, 0x31, 0x32] {
        assert!(slots_before.contains_key(&s), "{m}: slot {s:#x} missing before the checkpoint: {slots_before:x?}");
    }
    assert_eq!(slots_before, slots_after, "{m}: the same slots with the same types after the restore");
    assert!(
        log[jdb_before..jdb_after].contains(&format!("rtcr: checkpoint {from}:")),
        "{m}: restored from the checkpoint taken in the JDB hook"
    );

    // the counter: growing before the crash, going on from the checkpoint
    // after the restore (within a print either way: the child's prints and
    // rtcr's defmt lines are written at different moments), and growing
    let all = counts(&log);
    let cut_line = seqs.iter().find(|s| s.1 == from).unwrap().0;
    let at_cut = all.iter().filter(|(i, _)| *i < cut_line).map(|c| c.1).next_back().expect("counts before the cut");
    let pre: Vec<u64> = all.iter().filter(|(i, _)| *i < crash_at).map(|c| c.1).collect();
    assert!(pre.windows(2).all(|w| w[1] >= w[0]), "{m}: the counter went back without a restore: {pre:?}");
    let after: Vec<u64> = all.iter().filter(|(i, _)| *i > restored).map(|c| c.1).collect();
    assert!(after.len() >= 3, "{m}: the restored child keeps counting: {after:?}");
    assert!(after[0] + 64 >= at_cut && after[0] <= at_cut + 128, "{m}: from the checkpoint's {at_cut}: {after:?}");
    assert!(after.windows(2).all(|w| w[1] > w[0]), "{m}: counting on: {after:?}");
    say_figures(m, &log);
}

#[test]
fn raspi4b_demo_is_checkpointed_crashes_is_restored_and_jdb_shows_the_same_object_space() {
    demo_restored_and_jdb_equal(&RPI4, 90);
}

#[test]
fn imx8mp_evk_demo_is_checkpointed_crashes_is_restored_and_jdb_shows_the_same_object_space() {
    demo_restored_and_jdb_equal(&IMX8MP, 90);
}

/// Migration between machines of one architecture: the demo runs on QEMU
/// `virt` (its own kernel and L4Re), which dumps the newest image on the
/// console at 5 s; the image, put back together, is a boot module on
/// `board`, where rtcr restores the child from it (another memory map,
/// interrupt controller, UART and counter rate): the slot check passes and
/// the counter goes on from the dumped checkpoint.
fn migrates_from_virt(board: &Board, timeout: u32) {
    if !have_kernel(board.machine, board.fvar, board.lvar)
        || !have_kernel("aarch64 virt", "FIASCO_OBJ_ARM64", "L4RE_OBJ_ARM64")
    {
        return;
    }
    let m = board.machine;
    let first = boot_board("virt", "", 20, &[], "child=rtcr-demo dump_ms=5000");
    keep_log(&format!("{m}-migration-virt"), &first);
    let (seq, image) = dumped_image(&first);
    // the count printed last before the dumped checkpoint's line
    let cut_line = first
        .lines()
        .position(|l| l.contains(&format!("rtcr: checkpoint {seq}:")))
        .unwrap_or_else(|| panic!("checkpoint {seq} is not in the virt log"));
    let at_cut = counts(&first).iter().filter(|(i, _)| *i < cut_line).map(|c| c.1).next_back().unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("rtcr-qemu-{m}-migrated-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("virt.img");
    std::fs::write(&img, &image).unwrap();
    let log = boot_board(m, "", timeout, std::slice::from_ref(&img), "child=rtcr-demo restore=virt.img");
    keep_log(&format!("{m}-migration"), &log);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!log.contains("rtcr: PANIC") && !log.contains("rtcr: stopped"), "{m}:\n{log}");
    expect_line(&log, "rtcr: image module 'virt.img'");
    let restored = expect_line(&log, "rtcr: child 'rtcr-demo' restored from the image");
    eprintln!("{m}: the child restored from virt's image {} us after rtcr's start", num_after(&restored, " pages) "));
    assert!(!log.contains("demo: started"), "{m}: the migrated child must not start afresh:\n{log}");
    assert!(
        !log.contains("crashed") && !log.contains("failed"),
        "{m}: a crash or a failure after the migration:\n{log}"
    );
    let v = expect_line(&log, "rtcr: slots verified: ");
    let (good, total) = (num_after(&v, "verified: "), num_after(&v, "/"));
    assert!(good == total && total >= 20, "{m}: {v}");
    let printed: Vec<u64> = counts(&log).into_iter().map(|c| c.1).collect();
    eprintln!(
        "{m}: image of checkpoint {seq} from virt (count {at_cut} at the cut); counts after: {:?} .. {:?}",
        &printed[..printed.len().min(3)],
        printed.last()
    );
    assert!(printed.len() >= 3, "{m}: the migrated child counts: {printed:?}");
    assert!(printed[0] + 64 >= at_cut && printed[0] <= at_cut + 128, "{m}: from {at_cut}: {printed:?}");
    assert!(printed.windows(2).all(|w| w[1] > w[0]), "{m}: counting on: {printed:?}");
    // it goes on being checkpointed on the board
    let later = log.lines().filter(|l| l.contains("rtcr: checkpoint ") && l.contains(" pages copied")).count();
    assert!(later >= 3, "{m}: {later} checkpoints after the migration");
    say_figures(m, &log);
}

#[test]
fn raspi4b_restores_an_image_dumped_on_virt() {
    migrates_from_virt(&RPI4, 30);
}

#[test]
fn imx8mp_evk_restores_an_image_dumped_on_virt() {
    migrates_from_virt(&IMX8MP, 30);
}

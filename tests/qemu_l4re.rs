//! rtcr's L4Re test programs (l4re-apps/, issue 11: unmodified L4Re
//! programs as the child), booted the standard L4Re way: moe as the root
//! task starting the program with the L4Re environment
//! (`roottask moe --init=rom/<prog>`, modules l4re and the program). This is
//! the reference run of the programs rtcr is meant to run unchanged.
//!
//! - `rtcr-l4-hello` (C, libc only): a counter, a page of static memory
//!   checked and rewritten every round, a 50 ms usleep a round, a status
//!   line every 10 rounds.
//! - `rtcr-l4-suite` (C++, pthreads, the L4Re environment): an IPC gate
//!   served by an L4Re::Util::Registry_server in one thread and called with
//!   sequence numbers from another (exactly once each), a software IRQ from
//!   the environment's factory bound to a waiter and triggered by a third
//!   thread (each trigger delivered exactly once), a malloc block and a
//!   dataspace (mem_alloc + rm attach) checked every round.
//!
//! The programs are built here with scripts/build-l4re-apps.sh (L4Re's make,
//! into the L4Re build directory). Needs `FIASCO_OBJ_X86_64` +
//! `L4RE_OBJ_X86_64` / `FIASCO_OBJ_ARM64` + `L4RE_OBJ_ARM64` (as tests/qemu.rs),
//! the compilers the L4Re tree was configured with, and qemu-system-*.
//! Without them each test says SKIPPED and passes.
//!
//! Run: `cargo test -p rtcr --test qemu_l4re -- --nocapture`

mod common;

use common::{
    assert_no_problems, boot_rtcr, boot_under_moe, check_l4_app, expect_line, have_kernel, l4re_apps, num_after,
    L4reApps, Status,
};

/// One architecture's names.
struct Arch {
    arch: &'static str,
    fvar: &'static str,
    lvar: &'static str,
    machine: u16,
}

const X86_64: Arch = Arch { arch: "x86_64", fvar: "FIASCO_OBJ_X86_64", lvar: "L4RE_OBJ_X86_64", machine: 62 };
const AARCH64: Arch = Arch { arch: "aarch64", fvar: "FIASCO_OBJ_ARM64", lvar: "L4RE_OBJ_ARM64", machine: 183 };

/// The built programs, or `None` after a SKIPPED line.
fn apps(a: &Arch) -> Option<L4reApps> {
    if !have_kernel(a.arch, a.fvar, a.lvar) {
        return None;
    }
    l4re_apps(a.arch)
}

/// Boots `name` under moe for `timeout` s and checks its run: moe started
/// it, it printed each of `lines`, it ran clean (common::check_l4_app) and
/// every status line is a later round than the one before (no restart, no
/// repeat).
fn under_moe(a: &Arch, name: &str, ipc: bool, lines: &[&str], timeout: u32, min_rounds: u64) {
    let Some(apps) = apps(a) else { return };
    let prog = if name == "rtcr-l4-hello" { &apps.hello } else { &apps.suite };
    let log = boot_under_moe(a.arch, timeout, prog);
    let mut problems = Vec::new();
    if !log.contains(&format!("MOE: Starting: rom/{name}")) {
        problems.push(format!("moe did not start rom/{name}"));
    }
    for l in lines {
        if !log.contains(l) {
            problems.push(format!("no line with {l:?}"));
        }
    }
    let status = check_l4_app(&log, name, ipc, min_rounds, &mut problems);
    for w in status.windows(2) {
        let (prev, next): (Status, Status) = (w[0].1, w[1].1);
        if next.round <= prev.round || !next.covers(&prev) {
            problems.push(format!("went back: {prev:?} then {next:?}"));
        }
    }
    if let (Some((_, first)), Some((_, last))) = (status.first(), status.last()) {
        eprintln!("{} {name} under moe: {} status lines, first {first:?}, last {last:?}", a.arch, status.len());
    }
    assert_no_problems(&problems, &log);
}

/// The suite: its set-up line (threads started, the gate registered, the
/// IRQ created, the memory attached), then calls and IRQs growing.
fn suite_under_moe(a: &Arch, timeout: u32) {
    under_moe(a, "rtcr-l4-suite", true, &["rtcr-l4-suite: set up: 5 threads, gate "], timeout, 10);
}

#[test]
fn x86_64_l4_hello_under_moe() {
    // 50 ms rounds: 100 rounds are 5 s of the ~15 s the program runs
    under_moe(&X86_64, "rtcr-l4-hello", false, &[], 20, 100);
}

#[test]
fn aarch64_l4_hello_under_moe() {
    under_moe(&AARCH64, "rtcr-l4-hello", false, &[], 20, 100);
}

#[test]
fn x86_64_l4_suite_under_moe() {
    // 500 ms rounds: 10 rounds are 5 s of the ~15 s the program runs
    suite_under_moe(&X86_64, 20);
}

#[test]
fn aarch64_l4_suite_under_moe() {
    suite_under_moe(&AARCH64, 20);
}

/// Boots `name` under rtcr for `timeout` s — a checkpoint every 50 ms, a
/// crash every 3 s, the newest image dumped on the console at 10 s (the
/// dump holds rtcr up for seconds: the run up to it is checked) — and
/// checks: rtcr gave it the L4Re environment; it started once and ran
/// clean (its own checks: exactly-once calls and IRQs, memory, sleeps);
/// each crash was followed by a restore whose slot check passed, and the
/// status lines after it went on from the checkpoint. Then the dumped
/// image is restored on a second boot (another machine): the program goes
/// on from it, without a second start. `min_rounds` is for the first boot.
fn under_rtcr(a: &Arch, name: &str, ipc: bool, timeout: u32, min_rounds: u64) {
    let Some(apps) = apps(a) else { return };
    let prog = if name == "rtcr-l4-hello" { &apps.hello } else { &apps.suite };
    let args = format!("child={name} interval_ms=50 crash_ms=3000 crash_every_ms=3000 dump_ms=10000");
    let full = boot_rtcr(a.arch, timeout, std::slice::from_ref(prog), &args);
    // the run up to the dump: the dump holds rtcr up for seconds (no page
    // fault, no held call served meanwhile), an intrusion of the test's own
    let dump_at = full.find("rtcr: dumping checkpoint").unwrap_or(full.len());
    let log = &full[..dump_at];
    let mut problems = Vec::new();
    if !log.contains(&format!("rtcr: child '{name}' is an L4Re program: it gets the L4Re environment")) {
        problems.push("rtcr did not start it as an L4Re program".into());
    }
    let status = check_l4_app(log, name, ipc, min_rounds, &mut problems);
    for bad in ["crash loop", "does not serve", "exited with code", "the child started afresh"] {
        if let Some(l) = log.lines().find(|l| l.contains(bad)) {
            problems.push(format!("rtcr said: {l}"));
        }
    }
    // rtcr's clock on its lines; a crash or a restore in the last second of
    // the boot may have had no time to show its outcome
    let at = |l: &str| l.split_whitespace().next().and_then(|t| t.parse::<f64>().ok());
    let end = log.lines().filter_map(at).fold(0.0, f64::max);
    let settled = |l: &str| at(l).is_some_and(|t| t + 1.0 < end);
    let crashes =
        log.lines().filter(|l| l.contains("rtcr: child thread ") && l.contains(" crashed") && settled(l)).count();
    let restores: Vec<usize> = log
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("rtcr: restored from checkpoint ") && settled(l))
        .map(|(i, _)| i)
        .collect();
    let verified: Vec<&str> = log.lines().filter(|l| l.contains("rtcr: slots verified: ") && settled(l)).collect();
    eprintln!("{} {name} under rtcr: {crashes} crashes, {} restores, {verified:?}", a.arch, restores.len());
    if crashes < 2 || restores.len() < crashes || verified.len() != restores.len() {
        problems.push(format!("{crashes} crashes, {} restores, {} slot checks", restores.len(), verified.len()));
    }
    for v in &verified {
        if num_after(v, "verified: ") != num_after(v, "/") {
            problems.push(format!("slot check failed: {v}"));
        }
    }
    for &r in &restores {
        let before: Vec<Status> = status.iter().filter(|(i, _)| *i < r).map(|s| s.1).collect();
        let Some(first) = status.iter().find(|(i, _)| *i > r).map(|s| s.1) else {
            problems.push(format!("no status line after the restore at log line {r}"));
            continue;
        };
        // from a checkpoint at most a few tens of ms old: at most the last
        // status before the crash may come again, nothing older
        if let Some(reference) = before.iter().rev().nth(1).or(before.last()) {
            if !first.covers(reference) {
                problems.push(format!("not continued from the checkpoint: {reference:?} then {first:?}"));
            }
        }
    }
    if let (Some((_, first)), Some((_, last))) = (status.first(), status.last()) {
        eprintln!("{} {name} under rtcr: {} status lines, first {first:?}, last {last:?}", a.arch, status.len());
    }
    assert_no_problems(&problems, log);

    // another machine: a fresh boot from the dumped image
    let mut r = rtcr_image::dump::Reassembler::new();
    full.lines().for_each(|l| r.feed(l));
    let (seq, image) = r.finish().expect("an image dump in the first boot's log");
    rtcr_image::decode(&image).expect("the dumped image is valid");
    let before_dump: Vec<Status> = status.iter().map(|s| s.1).collect();
    let dir = std::env::temp_dir().join(format!("rtcr-l4-{}-{name}-{}", a.arch, std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let img = dir.join("migrated.img");
    std::fs::write(&img, &image).unwrap();
    let log2 = boot_rtcr(a.arch, timeout / 2, &[prog.clone(), img], &format!("child={name} restore=migrated.img"));
    let _ = std::fs::remove_dir_all(&dir);
    let mut problems = Vec::new();
    expect_line(&log2, &format!("rtcr: child '{name}' restored from the image"));
    let v = expect_line(&log2, "rtcr: slots verified: ");
    if num_after(&v, "verified: ") != num_after(&v, "/") {
        problems.push(format!("slot check after the migration failed: {v}"));
    }
    if log2.lines().any(|l| l.contains(&format!("{name}: start"))) {
        problems.push("the migrated program started afresh".into());
    }
    let status2: Vec<Status> = log2.lines().filter_map(|l| Status::parse(name, l)).collect();
    match (status2.first(), before_dump.iter().rev().nth(1).or(before_dump.last())) {
        (Some(first), Some(reference)) if first.covers(reference) && first.errors == 0 => {}
        (first, reference) => {
            problems.push(format!("checkpoint {seq} migrated: {reference:?} before the dump, then {first:?}"))
        }
    }
    if status2.len() < 2 || status2.last().is_some_and(|l| l.errors != 0 || !l.ledger_ok) {
        problems.push(format!("the migrated program: {status2:?}"));
    }
    eprintln!(
        "{} {name} migrated with checkpoint {seq}: {} status lines, last {:?}",
        a.arch,
        status2.len(),
        status2.last()
    );
    assert_no_problems(&problems, &log2);
}

#[test]
fn x86_64_l4_hello_under_rtcr() {
    under_rtcr(&X86_64, "rtcr-l4-hello", false, 40, 100);
}

#[test]
fn aarch64_l4_hello_under_rtcr() {
    under_rtcr(&AARCH64, "rtcr-l4-hello", false, 50, 100);
}

#[test]
fn x86_64_l4_suite_under_rtcr() {
    under_rtcr(&X86_64, "rtcr-l4-suite", true, 40, 10);
}

#[test]
fn aarch64_l4_suite_under_rtcr() {
    under_rtcr(&AARCH64, "rtcr-l4-suite", true, 50, 10);
}

/// Both programs are what rtcr's loader takes as a child (a static ET_EXEC
/// for the machine, every PT_LOAD inside the child range), as L4Re builds
/// them by default, and what moe's loader takes too.
fn static_and_loadable(a: &Arch) {
    let Some(apps) = apps(a) else { return };
    for prog in [&apps.hello, &apps.suite] {
        let file = std::fs::read(prog).unwrap_or_else(|e| panic!("{}: {e}", prog.display()));
        let img = rtcr_boot::elf::Image::parse(&file, a.machine, rtcr_boot::layout::CHILD_RANGE)
            .unwrap_or_else(|e| panic!("rtcr's loader refuses {}: {e}", prog.display()));
        let segments = img.segments().count();
        eprintln!("{} {}: {segments} PT_LOAD segments", a.arch, prog.display());
        assert!(segments >= 2, "{}: {segments} PT_LOAD segments, want text and data", prog.display());
    }
}

#[test]
fn x86_64_l4_apps_are_static_children_rtcr_can_load() {
    static_and_loadable(&X86_64);
}

#[test]
fn aarch64_l4_apps_are_static_children_rtcr_can_load() {
    static_and_loadable(&AARCH64);
}

/// The check itself, on made-up logs (no kernel needed): a clean run
/// passes; an ERROR line, a second start, errors, an early sleep, a BAD
/// ledger, too few rounds and calls that stop are each found.
#[test]
fn the_l4_app_check_finds_each_kind_of_problem() {
    let line = |r: u64, c: u64, e: u64, early: u64, ledger: &str| {
        format!(
            "rtcr-l4-suite: round {r} calls {c} irqs {c} sleeps {r} early {early} late 0 errors {e} ledger {ledger}"
        )
    };
    let log =
        |lines: &[String]| format!("MOE: Starting: rom/rtcr-l4-suite\nrtcr-l4-suite: start\n{}\n", lines.join("\n"));
    let problems = |log: &str, ipc: bool| {
        let mut p = Vec::new();
        check_l4_app(log, "rtcr-l4-suite", ipc, 3, &mut p);
        p
    };
    let clean = log(&[line(1, 50, 0, 0, "ok"), line(2, 100, 0, 0, "ok"), line(3, 150, 0, 0, "ok")]);
    assert_eq!(problems(&clean, true), Vec::<String>::new());
    let bad = [
        format!("{clean}rtcr-l4-suite: ERROR client: call 7 answered 9\n"),
        format!("{clean}rtcr-l4-suite: start\n"),
        log(&[line(1, 50, 0, 0, "ok"), line(2, 100, 0, 0, "ok"), line(3, 150, 1, 0, "ok")]),
        log(&[line(1, 50, 0, 0, "ok"), line(2, 100, 0, 0, "ok"), line(3, 150, 0, 1, "ok")]),
        log(&[line(1, 50, 0, 0, "ok"), line(2, 100, 0, 0, "ok"), line(3, 150, 0, 0, "BAD")]),
        log(&[line(1, 50, 0, 0, "ok"), line(2, 100, 0, 0, "ok")]),
        log(&[line(1, 50, 0, 0, "ok"), line(2, 50, 0, 0, "ok"), line(3, 50, 0, 0, "ok")]),
        "rtcr-l4-suite: start\n".to_string(),
    ];
    for b in &bad {
        assert!(!problems(b, true).is_empty(), "not found in:\n{b}");
    }
    // calls that do not grow are a problem only where calls are expected
    assert!(problems(&bad[6], false).is_empty());
}

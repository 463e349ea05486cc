//! What the QEMU test files share: finding the build, running
//! scripts/qemu-boot.sh, reading numbers out of log lines, and the status
//! line the test children print (rtcr-foreign, the C child). Each test file
//! uses part of it.
#![allow(dead_code)]

use std::env;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root.
pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where cargo puts builds: `$CARGO_TARGET_DIR` when set (scripts/qemu-boot.sh
/// looks there too), else target/.
pub fn target_dir() -> PathBuf {
    env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"))
}

/// A release binary for `arch`.
pub fn release_bin(arch: &str, name: &str) -> PathBuf {
    target_dir().join(format!("{arch}-unknown-none/release/{name}"))
}

/// Whether the build variables for `arch` are set; says SKIPPED if not.
pub fn have_kernel(arch: &str, fvar: &str, lvar: &str) -> bool {
    let have = env::var_os(fvar).is_some() && env::var_os(lvar).is_some();
    if !have {
        eprintln!("SKIPPED: qemu {arch}: set {fvar} and {lvar} to a Fiasco and an L4Re build directory");
    }
    have
}

/// Runs scripts/qemu-boot.sh with `keys` (may be empty) and `opts` after the
/// common options; its log. Fails when the script does.
pub fn qemu_boot(arch: &str, keys: &str, timeout: u32, opts: &[OsString]) -> String {
    let mut cmd = Command::new(root().join("scripts/qemu-boot.sh"));
    cmd.args(["--arch", arch, "--timeout", &timeout.to_string()]);
    if !keys.is_empty() {
        cmd.args(["--keys", keys]);
    }
    let out = cmd.args(opts).output().expect("cannot run scripts/qemu-boot.sh");
    let log = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "qemu-boot failed: {}\n{log}", String::from_utf8_lossy(&out.stderr));
    log
}

/// Boots the release rtcr of `arch` with `modules` (each must exist) and the
/// roottask words `args`; the log.
pub fn boot_rtcr(arch: &str, timeout: u32, modules: &[PathBuf], args: &str) -> String {
    let rtcr = release_bin(arch, "rtcr");
    let mut opts: Vec<OsString> = vec!["--elf".into(), rtcr.clone().into()];
    for m in std::iter::once(&rtcr).chain(modules) {
        assert!(
            m.exists(),
            "{} missing: cargo build --release -p rtcr -p rtcr-child --target {arch}-unknown-none",
            m.display()
        );
    }
    for m in modules {
        opts.extend(["--module".into(), m.into()]);
    }
    opts.extend(["--".into(), args.into()]);
    qemu_boot(arch, "", timeout, &opts)
}

/// The first line with `needle`; fails with the log if there is none.
pub fn expect_line(log: &str, needle: &str) -> String {
    log.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in the boot log:\n{log}"))
        .to_string()
}

/// The number after `key` in `line`.
pub fn num_after(line: &str, key: &str) -> u64 {
    line.split(key)
        .nth(1)
        .and_then(|t| t.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {key:?} in {line:?}"))
}

/// A test child's status line (`<name>: round R calls C irqs I sleeps S
/// early E late L errors X ledger ok|BAD`): the children's own type, which
/// writes it.
pub use rtcr_child::foreign::Status;

/// What every run of test child `name` must show, as root task or under
/// rtcr: no ERROR line, one start, its set-up line, status lines whose
/// counters grow, no early sleep, the ledger intact. Each violation is
/// pushed to `problems` (so one run names all of them). Returns the status
/// lines with the index of the log line each came from.
pub fn check_child_clean(log: &str, name: &str, min_rounds: u64, problems: &mut Vec<String>) -> Vec<(usize, Status)> {
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(&format!("{name}: ERROR"))).collect();
    if !errors.is_empty() {
        let shown = errors.iter().take(12).copied().collect::<Vec<_>>().join("\n  ");
        problems.push(format!("{} `{name}: ERROR` lines, the first:\n  {shown}", errors.len()));
    }
    let starts = log.lines().filter(|l| l.contains(&format!("{name}: started"))).count();
    if starts != 1 {
        problems.push(format!("`{name}: started` {starts} times, not once"));
    }
    if !log.contains(&format!("{name}: set up: 4 threads, 3 gates, 3 IRQs")) {
        problems.push(format!("no `{name}: set up` line"));
    }
    let status: Vec<(usize, Status)> =
        log.lines().enumerate().filter_map(|(i, l)| Status::parse(name, l).map(|s| (i, s))).collect();
    let (Some(&(_, first)), Some(&(_, last))) = (status.first(), status.last()) else {
        problems.push("no status line".into());
        return status;
    };
    if last.round < min_rounds {
        problems.push(format!("only {} rounds (want {min_rounds}): {last:?}", last.round));
    }
    if last.errors != 0 || last.early != 0 || !last.ledger_ok {
        problems
            .push(format!("the last status: errors {} early {} ledger ok {}", last.errors, last.early, last.ledger_ok));
    }
    if !(last.calls > first.calls && last.irqs > first.irqs && last.sleeps > first.sleeps) {
        problems.push(format!("calls, IRQs and sleeps stopped: {first:?} .. {last:?}"));
    }
    status
}

/// Fails with every problem found, and the end of the log.
pub fn assert_no_problems(problems: &[String], log: &str) {
    if !problems.is_empty() {
        let tail = log.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n");
        panic!("{} problem(s):\n- {}\n(the log ends:\n{tail})", problems.len(), problems.join("\n- "));
    }
}

/// What a soak of a test child under rtcr must show about its crashes and
/// restores (`interval_ms=20 crash_ms=10000 crash_every_ms=10000` for 60 s
/// and more): checkpoints over at least 60 s, at most 100 ms apart on
/// average (rtcr takes them as often as it can; on QEMU TCG about every
/// 55 ms); a crash every 10 s, each followed by a restore whose slot check
/// passes; and after each restore the child's counters go on from the
/// checkpoint (at most the last report before the crash repeated) and keep
/// growing. Each violation goes to `problems`.
pub fn check_soak_restores(arch: &str, log: &str, status: &[(usize, Status)], problems: &mut Vec<String>) {
    let at: Vec<f64> = log
        .lines()
        .filter(|l| l.contains("rtcr: checkpoint ") && l.contains(" pages copied"))
        .filter_map(|l| l.split_whitespace().next().and_then(|t| t.parse().ok()))
        .collect();
    let span = at.last().copied().unwrap_or(0.0) - at.first().copied().unwrap_or(0.0);
    eprintln!("{arch}: {} checkpoints over {span:.1} s", at.len());
    if span < 60.0 || (at.len() as f64) < span * 10.0 {
        problems.push(format!("{} checkpoints over {span:.1} s", at.len()));
    }
    let crashes = log.lines().filter(|l| l.contains("rtcr: test hook crash_ms")).count();
    if crashes < 6 {
        problems.push(format!("the crash hook fired {crashes} times, not every 10 s for 60 s"));
    }
    let restores: Vec<usize> = log
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("rtcr: restored from checkpoint "))
        .map(|(i, _)| i)
        .collect();
    eprintln!("{arch}: {crashes} crashes, {} restores", restores.len());
    if restores.len() < crashes.min(6) {
        problems.push(format!("{crashes} crashes, {} restores", restores.len()));
    }
    let verified = log.lines().filter(|l| l.contains("rtcr: slots verified: ")).collect::<Vec<_>>();
    if verified.len() != restores.len() {
        problems.push(format!("{} restores, {} slot checks", restores.len(), verified.len()));
    }
    for v in verified {
        if num_after(v, "verified: ") != num_after(v, "/") {
            problems.push(format!("slot check failed: {v}"));
        }
    }
    for &r in &restores {
        let before: Vec<Status> = status.iter().filter(|(i, _)| *i < r).map(|s| s.1).collect();
        let after: Vec<Status> = status.iter().filter(|(i, _)| *i > r).map(|s| s.1).collect();
        let (Some(&first), Some(&last)) = (after.first(), after.last()) else {
            problems.push(format!("no status line after the restore at log line {r}"));
            continue;
        };
        // restored from a checkpoint at most a few tens of ms old: at most
        // the last report before the crash may be repeated, nothing older
        if let Some(reference) = before.iter().rev().nth(1).or(before.last()) {
            if !first.covers(reference) {
                problems.push(format!("not continued from the checkpoint: {reference:?} then {first:?}"));
            }
        }
        if after.len() >= 2 && (last.calls <= first.calls || last.irqs <= first.irqs || last.sleeps <= first.sleeps) {
            problems.push(format!("the restored child stopped: {first:?} .. {last:?}"));
        }
    }
}

/// rtcr's L4Re test programs (l4re-apps/), built for one architecture by
/// scripts/build-l4re-apps.sh with L4Re's build system.
#[derive(Clone, Debug)]
pub struct L4reApps {
    /// `rtcr-l4-hello`: a counter, a ledger page and a 50 ms sleep a round.
    pub hello: PathBuf,
    /// `rtcr-l4-suite`: pthreads, an L4::Server gate, an IRQ, malloc and
    /// dataspace memory.
    pub suite: PathBuf,
}

/// Builds l4re-apps/ for `arch` (x86_64 or aarch64) into the L4Re build
/// directory of `L4RE_OBJ_*` with scripts/build-l4re-apps.sh, once per test
/// process and architecture (the tests of one architecture share the build
/// directory, so they must not run make in it at the same time). `None`,
/// after a SKIPPED line with the script's reason, when the host lacks what
/// the build needs (the script's exit status 3: no variable, no compiler);
/// a failing build fails the test.
pub fn l4re_apps(arch: &str) -> Option<L4reApps> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static BUILT: OnceLock<Mutex<HashMap<String, Option<L4reApps>>>> = OnceLock::new();
    let mut built = BUILT.get_or_init(Default::default).lock().unwrap_or_else(|e| e.into_inner());
    if let Some(apps) = built.get(arch) {
        return apps.clone();
    }
    let out = Command::new(root().join("scripts/build-l4re-apps.sh"))
        .args(["--arch", arch])
        .output()
        .expect("cannot run scripts/build-l4re-apps.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let apps = match out.status.code() {
        Some(0) => {
            let path = |name: &str| -> PathBuf {
                stdout
                    .lines()
                    .map(PathBuf::from)
                    .find(|p| p.file_name().is_some_and(|f| f == name))
                    .unwrap_or_else(|| panic!("build-l4re-apps printed no path of {name}:\n{stdout}"))
            };
            Some(L4reApps { hello: path("rtcr-l4-hello"), suite: path("rtcr-l4-suite") })
        }
        Some(3) => {
            let why = stderr.lines().last().unwrap_or("");
            eprintln!("SKIPPED: l4re-apps {arch}: cannot build them here: {why}");
            None
        }
        _ => panic!("build-l4re-apps --arch {arch} failed:\n{stdout}{stderr}"),
    };
    built.insert(arch.to_string(), apps.clone());
    apps
}

/// Boots `prog` the standard L4Re way, with moe as the root task
/// (`roottask moe --init=rom/<prog>`, modules l4re and `prog`:
/// scripts/qemu-boot.sh --roottask moe); the log.
pub fn boot_under_moe(arch: &str, timeout: u32, prog: &Path) -> String {
    assert!(prog.exists(), "{} missing", prog.display());
    qemu_boot(arch, "", timeout, &["--roottask".into(), "moe".into(), "--module".into(), prog.into()])
}

/// What every run of L4Re test program `name` (rtcr-l4-hello,
/// rtcr-l4-suite) must show: no ERROR line, one start line, status lines
/// whose rounds and sleeps grow (and calls and IRQs with `ipc`), at least
/// `min_rounds` rounds, and at the end no error, no early sleep, the ledger
/// intact. Each violation goes to `problems`. Returns the status lines with
/// the index of the log line each came from.
pub fn check_l4_app(
    log: &str,
    name: &str,
    ipc: bool,
    min_rounds: u64,
    problems: &mut Vec<String>,
) -> Vec<(usize, Status)> {
    let errors: Vec<&str> = log.lines().filter(|l| l.contains(&format!("{name}: ERROR"))).collect();
    if !errors.is_empty() {
        let shown = errors.iter().take(12).copied().collect::<Vec<_>>().join("\n  ");
        problems.push(format!("{} `{name}: ERROR` lines, the first:\n  {shown}", errors.len()));
    }
    let starts = log.lines().filter(|l| l.contains(&format!("{name}: start"))).count();
    if starts != 1 {
        problems.push(format!("`{name}: start` {starts} times, not once"));
    }
    let status: Vec<(usize, Status)> =
        log.lines().enumerate().filter_map(|(i, l)| Status::parse(name, l).map(|s| (i, s))).collect();
    let (Some(&(_, first)), Some(&(_, last))) = (status.first(), status.last()) else {
        problems.push(format!("no `{name}: round` status line"));
        return status;
    };
    if status.len() < 2 {
        problems.push(format!("one status line only: {last:?}"));
    }
    if last.round < min_rounds {
        problems.push(format!("only {} rounds (want {min_rounds}): {last:?}", last.round));
    }
    if last.errors != 0 || last.early != 0 || !last.ledger_ok {
        problems
            .push(format!("the last status: errors {} early {} ledger ok {}", last.errors, last.early, last.ledger_ok));
    }
    if !(last.round > first.round && last.sleeps > first.sleeps) {
        problems.push(format!("rounds and sleeps stopped: {first:?} .. {last:?}"));
    }
    if ipc && !(last.calls > first.calls && last.irqs > first.irqs) {
        problems.push(format!("calls and IRQs stopped: {first:?} .. {last:?}"));
    }
    status
}

/// The child's object space as JDB's `o` view shows it: slot → object type,
/// from rows like `000010:00017-SW Gate    0001a-SW Gate    --   ...`.
pub fn jdb_slots(screen: &str) -> std::collections::BTreeMap<u64, String> {
    let mut slots = std::collections::BTreeMap::new();
    let b = screen.as_bytes();
    let mut i = 6;
    while i < b.len() {
        let row = &screen[i - 6..i];
        if b[i] == b':' && row.bytes().all(|c| c.is_ascii_hexdigit()) && (i < 7 || !b[i - 7].is_ascii_hexdigit()) {
            let base = u64::from_str_radix(row, 16).unwrap();
            let mut tokens = screen[i + 1..].split_whitespace();
            let mut col = 0;
            while col < 4 {
                match tokens.next() {
                    Some("--") => {}
                    Some(t) if t.len() > 6 && t.as_bytes()[5] == b'-' => {
                        slots.insert(base + col, tokens.next().unwrap_or("?").to_string());
                    }
                    _ => break,
                }
                col += 1;
            }
        }
        i += 1;
    }
    slots
}

/// The demo child's count in one of its `demo: count N …` lines.
pub fn demo_count(line: &str) -> Option<u64> {
    line.contains("demo: count ").then(|| num_after(line, "demo: count "))
}

/// The image the console dump of `log` (`dump_ms=`) holds: its checkpoint
/// number and bytes, checked to decode.
pub fn dumped_image(log: &str) -> (u64, Vec<u8>) {
    let mut r = rtcr_image::dump::Reassembler::new();
    log.lines().for_each(|l| r.feed(l));
    let (seq, image) = r.finish().expect("an image dump in the log");
    rtcr_image::decode(&image).expect("the dumped image is valid");
    (seq, image)
}

/// rtcr's figures in a boot log: the pause of each checkpoint and the time
/// of each restore, in µs (from `checkpoint N: … pause P us` and `restored
/// from checkpoint N in T us`), for the notes; never asserted.
pub fn pause_and_restore_us(log: &str) -> (Vec<u64>, Vec<u64>) {
    let pauses = log
        .lines()
        .filter(|l| l.contains("rtcr: checkpoint ") && l.contains(" pause "))
        .map(|l| num_after(l, " pause "))
        .collect();
    let restores = log
        .lines()
        .filter(|l| l.contains("rtcr: restored from checkpoint ") && l.contains(" in "))
        .map(|l| num_after(l, " in "))
        .collect();
    (pauses, restores)
}

/// Keeps a boot log as `<target dir>/qemu-logs/<name>.log` (each run
/// overwrites it) and says where: the evidence when a check fails.
pub fn keep_log(name: &str, log: &str) {
    let dir = target_dir().join("qemu-logs");
    let path = dir.join(format!("{name}.log"));
    match std::fs::create_dir_all(&dir).and_then(|_| std::fs::write(&path, log)) {
        Ok(()) => eprintln!("{name}: boot log in {}", path.display()),
        Err(e) => eprintln!("{name}: could not keep the boot log in {}: {e}", path.display()),
    }
}

//! Runs the rtcrctl binary on images built with rtcr-image in a temporary
//! directory, and checks exit codes and the lines a person relies on.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rtcr_image::{
    encode, Arch, CapRecord, Checkpoint, ImageMeta, MemRegion, ObjectRecord, PageRecord, Placement, Service, Store,
    ThreadRecord, ThreadState,
};

/// A fresh directory for one test.
fn dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rtcrctl-cli").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rtcrctl(args: &[&str]) -> (i32, String, String) {
    let Output { status, stdout, stderr } = Command::new(env!("CARGO_BIN_EXE_rtcrctl")).args(args).output().unwrap();
    let (out, err) = (String::from_utf8(stdout).unwrap(), String::from_utf8(stderr).unwrap());
    (status.code().expect("exited"), out, err)
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn meta(arch: Arch, sequence: u64) -> ImageMeta {
    ImageMeta { arch, page_shift: 12, sequence, clock_us: 2_500_000 + sequence }
}

fn thread(arch: Arch, n: u64, state: ThreadState) -> ThreadRecord {
    let mut regs = vec![0u64; arch.regs_len()];
    regs[arch.ip_index()] = 0x40_1000 + n * 0x20;
    regs[arch.sp_index()] = 0x7fff_e000 - n * 0x1000;
    ThreadRecord {
        utcb: 0x7f00_0000 + n * 0x200,
        prio: 10 + n as u8,
        quantum_us: 0,
        pager_slot: 4,
        exc_slot: 4,
        regs,
        utcb_words: vec![n; 128],
        state,
        fpu: Vec::new(),
        timeouts: Vec::new(),
    }
}

fn page(vaddr: u64, rights: u8, fill: u8) -> PageRecord {
    PageRecord { vaddr, rights, data: vec![fill; 4096] }
}

fn checkpoint(m: &ImageMeta) -> Checkpoint {
    Checkpoint {
        child: "counter".into(),
        clock_us: m.clock_us,
        utcb_area: (0x7f00_0000, 12),
        objects: vec![
            ObjectRecord::Task,
            ObjectRecord::Service { service: Service::Factory, label: 0x10 },
            ObjectRecord::Service { service: Service::Log, label: 0x20 },
            ObjectRecord::Thread { thread: 0 },
            ObjectRecord::Thread { thread: 1 },
            ObjectRecord::Gate { label: 0xbeef_0000, bound: Some(3) },
            ObjectRecord::Irq { label: 0x1230, bound: Some(4), hw_line: Some(3), pending: true },
        ],
        caps: vec![
            CapRecord { slot: 11, object: 5, rights: 0xF, server: true },
            CapRecord { slot: 1, object: 0, rights: 0xF, server: false },
            CapRecord { slot: 2, object: 1, rights: 0x6, server: false },
            CapRecord { slot: 5, object: 2, rights: 0x5, server: false },
            CapRecord { slot: 3, object: 3, rights: 0xF, server: false },
            CapRecord { slot: 10, object: 4, rights: 0xF, server: false },
            CapRecord { slot: 12, object: 6, rights: 0xF, server: false },
        ],
        threads: vec![thread(m.arch, 0, ThreadState::InKernel), thread(m.arch, 1, ThreadState::Running)],
        pages: vec![
            page(0x40_0000, 5, 1),
            page(0x40_1000, 5, 2),
            page(0x40_2000, 5, 3),
            page(0x60_0000, 6, 4),
            page(0x7fff_d000, 6, 5),
        ],
        placement: vec![Placement { thread: 1, cpu: 2, affinity: (2, 1) }],
    }
}

fn write_image(d: &Path, name: &str, m: &ImageMeta, cp: &Checkpoint) -> PathBuf {
    let p = d.join(name);
    std::fs::write(&p, encode(m, cp).unwrap()).unwrap();
    p
}

#[test]
fn inspect_shows_header_caps_threads_and_page_runs() {
    let d = dir("inspect");
    let m = meta(Arch::Amd64, 7);
    let img = write_image(&d, "a.img", &m, &checkpoint(&m));
    let (code, out, err) = rtcrctl(&["inspect", path(&img)]);
    assert_eq!(code, 0, "{out}{err}");
    for want in [
        "arch       amd64",
        "page size  4096 bytes (shift 12)",
        "sequence   7",
        "clock      2500007 us (2.500007 s)",
        "child      \"counter\"",
        "objects (7)",
        "capabilities (7)",
        "threads (2)",
        "pages (5, 20480 bytes)",
        "0x400000-0x403000  3 pages  r-x",
        "0x600000-0x601000  1 page  rw-",
        "0x7fffd000-0x7fffe000  1 page  rw-",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    // The cap table is sorted by slot, with JDB rights, server flag, label
    // and bound thread.
    let caps: Vec<&str> = out.lines().skip_while(|l| !l.starts_with("capabilities")).skip(1).take(8).collect();
    let slots: Vec<&str> = caps.iter().map(|l| l.split_whitespace().next().unwrap()).collect();
    assert_eq!(slots, ["slot", "0x1", "0x2", "0x3", "0x5", "0xa", "0xb", "0xc"], "{out}");
    let gate: Vec<&str> = caps[6].split_whitespace().collect();
    assert_eq!(gate, ["0xb", "gate", "DSW", "server", "0xbeef0000", "thread", "0", "(#3)", "#5"], "{out}");
    let factory: Vec<&str> = caps[2].split_whitespace().collect();
    assert_eq!(factory, ["0x2", "svc:factory", "-S-", "-", "0x10", "-", "#1"], "{out}");
    assert!(caps[7].contains("irq") && caps[7].contains("0x1230") && caps[7].contains("thread 1 (#4)"), "{out}");
    // Threads: ip and sp from the amd64 register layout.
    let t0 = out.lines().find(|l| l.split_whitespace().take(2).eq(["0", "0x7f000000"])).expect(&out);
    assert!(t0.contains("in-kernel") && t0.contains("0x401000") && t0.contains("0x7fffe000"), "{t0}");
    // the CPU column: thread 1 ran on CPU 2, thread 0 has no placement
    assert_eq!(t0.split_whitespace().nth(4), Some("-"), "{t0}");
    let t1 = out.lines().find(|l| l.split_whitespace().next() == Some("1") && l.contains("running")).expect(&out);
    assert_eq!(t1.split_whitespace().nth(4), Some("2"), "{t1}");
    assert!(out.contains("irq          label 0x1230, bound to thread 1 (#4), hw line 3, pending"), "{out}");
}

#[test]
fn inspect_arm64_names_pc() {
    let d = dir("inspect-arm64");
    let m = meta(Arch::Arm64, 1);
    let img = write_image(&d, "a.img", &m, &checkpoint(&m));
    let (code, out, _) = rtcrctl(&["inspect", path(&img)]);
    assert_eq!(code, 0);
    let head = out.lines().find(|l| l.trim_start().starts_with("thread ")).unwrap();
    assert!(head.contains(" pc ") && head.contains(" sp "), "{head}");
    let t1 = out.lines().find(|l| l.split_whitespace().take(2).eq(["1", "0x7f000200"])).expect(&out);
    assert!(t1.contains("0x401020") && t1.contains("0x7fffd000"), "{t1}");
}

#[test]
fn inspect_of_a_damaged_image_shows_the_header_and_the_reason() {
    let d = dir("inspect-bad");
    let m = meta(Arch::Amd64, 7);
    let mut bytes = encode(&m, &checkpoint(&m)).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xFF;
    let img = d.join("bad.img");
    std::fs::write(&img, bytes).unwrap();
    let (code, out, _) = rtcrctl(&["inspect", path(&img)]);
    assert_eq!(code, 1);
    assert!(out.contains("sequence   7"), "{out}");
    assert!(out.contains("error: body checksum mismatch"), "{out}");
}

#[test]
fn verify_valid_image() {
    let d = dir("verify-ok");
    let m = meta(Arch::Amd64, 42);
    let img = write_image(&d, "a.img", &m, &checkpoint(&m));
    let (code, out, _) = rtcrctl(&["verify", path(&img)]);
    assert_eq!(code, 0);
    assert_eq!(out, "ok: sequence 42, amd64, 5 pages\n");
}

#[test]
fn verify_corrupted_image_says_why() {
    let d = dir("verify-bad");
    let m = meta(Arch::Amd64, 42);
    let good = encode(&m, &checkpoint(&m)).unwrap();

    let mut body_flip = good.clone();
    body_flip[200] ^= 0x04;
    let mut header_flip = good.clone();
    header_flip[17] ^= 0x01; // sequence
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("body.img", body_flip, "invalid: body checksum mismatch"),
        ("header.img", header_flip, "invalid: header checksum mismatch"),
        ("short.img", good[..good.len() - 1].to_vec(), "invalid: body length"),
        ("tiny.img", good[..20].to_vec(), "invalid: too short: 20 bytes, a header needs 64"),
        (
            "text.img",
            b"hello, this is not an image at all, not even close to one. Not at all.".to_vec(),
            "invalid: bad magic",
        ),
    ];
    for (name, bytes, want) in cases {
        let p = d.join(name);
        std::fs::write(&p, bytes).unwrap();
        let (code, out, _) = rtcrctl(&["verify", path(&p)]);
        assert_eq!(code, 1, "{name}: {out}");
        assert!(out.starts_with(want), "{name}: {out}");
    }
}

#[test]
fn verify_missing_file_is_an_error() {
    let d = dir("verify-missing");
    let (code, _, err) = rtcrctl(&["verify", path(&d.join("nope.img"))]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn verify_store_reports_both_slots() {
    let d = dir("verify-store");
    let mut store = Store::new(MemRegion::zeroed(2 * 32 * 1024));
    for seq in [1, 2, 3] {
        let m = meta(Arch::Amd64, seq);
        store.write(&encode(&m, &checkpoint(&m)).unwrap()).unwrap();
    }
    let mut region = store.into_inner();
    let file = d.join("store.bin");
    std::fs::write(&file, &region.0).unwrap();
    let (code, out, _) = rtcrctl(&["verify", "--store", path(&file)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("slot A: valid: sequence 3, amd64, 5 pages"), "{out}");
    assert!(out.contains("slot B: valid: sequence 2, amd64, 5 pages"), "{out}");
    assert!(out.contains("latest: slot A, sequence 3"), "{out}");

    // Corrupt A: the restore falls back to B.
    region.0[100] ^= 1;
    std::fs::write(&file, &region.0).unwrap();
    let (code, out, _) = rtcrctl(&["verify", "--store", path(&file)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("slot A: corrupt: body checksum mismatch"), "{out}");
    assert!(out.contains("latest: slot B, sequence 2"), "{out}");

    // Corrupt B as well: nothing to restore, both reasons given.
    region.0[32 * 1024] ^= 1;
    std::fs::write(&file, &region.0).unwrap();
    let (code, out, _) = rtcrctl(&["verify", "--store", path(&file)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("slot B: corrupt: bad magic"), "{out}");
    assert!(out.contains("invalid: no valid image: slot A: body checksum mismatch"), "{out}");

    // A store never written.
    std::fs::write(&file, vec![0u8; 4096]).unwrap();
    let (code, out, _) = rtcrctl(&["verify", "--store", path(&file)]);
    assert_eq!(code, 1);
    assert!(out.contains("slot A: empty") && out.contains("slot B: empty"), "{out}");
    assert!(out.contains("invalid: the store is empty"), "{out}");
}

#[test]
fn diff_identical_images() {
    let d = dir("diff-same");
    let m = meta(Arch::Amd64, 5);
    let a = write_image(&d, "a.img", &m, &checkpoint(&m));
    let b = write_image(&d, "b.img", &m, &checkpoint(&m));
    let (code, out, _) = rtcrctl(&["diff", path(&a), path(&b)]);
    assert_eq!(code, 0, "{out}");
    assert!(out.ends_with("identical\n"), "{out}");
}

#[test]
fn diff_one_page_differs() {
    let d = dir("diff-page");
    let m = meta(Arch::Amd64, 5);
    let cp = checkpoint(&m);
    let mut changed = cp.clone();
    changed.pages[3].data[17] = 0xAA;
    changed.pages[3].data[18] = 0xBB;
    let a = write_image(&d, "a.img", &m, &cp);
    let b = write_image(&d, "b.img", &m, &changed);
    let (code, out, _) = rtcrctl(&["diff", path(&a), path(&b)]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("pages:\n  differs: 0x600000 (2 bytes differ)\n"), "{out}");
    assert!(out.ends_with("1 difference\n"), "{out}");
    assert!(!out.contains("header:") && !out.contains("threads:"), "{out}");
}

#[test]
fn diff_reports_every_kind_of_change() {
    let d = dir("diff-all");
    let ma = meta(Arch::Amd64, 5);
    let mb = meta(Arch::Amd64, 6);
    let a_cp = checkpoint(&ma);
    let mut b_cp = checkpoint(&mb);
    b_cp.objects[5] = ObjectRecord::Gate { label: 0xbeef_0000, bound: Some(4) };
    b_cp.caps.retain(|c| c.slot != 12);
    b_cp.caps.push(CapRecord { slot: 0x20, object: 5, rights: 0x5, server: false });
    b_cp.threads[1].regs[Arch::Amd64.ip_index()] += 4;
    b_cp.threads[1].regs[3] = 9;
    b_cp.threads[1].state = ThreadState::InKernel;
    b_cp.pages.remove(0);
    b_cp.pages.push(page(0x61_0000, 6, 0));
    let a = write_image(&d, "a.img", &ma, &a_cp);
    let b = write_image(&d, "b.img", &mb, &b_cp);
    let (code, out, _) = rtcrctl(&["diff", path(&a), path(&b)]);
    assert_eq!(code, 1, "{out}");
    for want in [
        "sequence: 5 -> 6",
        "clock us: 2500005 -> 2500006",
        "#5: gate, label 0xbeef0000, bound to thread 0 (#3) -> gate, label 0xbeef0000, bound to thread 1 (#4)",
        "slot 0xc only in A: irq DSW, label 0x1230, bound to thread 1 (#4), object #6",
        "slot 0x20 only in B: gate --W, label 0xbeef0000, bound to thread 1 (#4), object #5",
        "slot 0xb: gate DSW server, label 0xbeef0000, bound to thread 0 (#3), object #5 -> \
         gate DSW server, label 0xbeef0000, bound to thread 1 (#4), object #5",
        "thread 1: state: running -> in-kernel, ip: 0x401020 -> 0x401024, regs [3] differ",
        "only in A: 0x400000-0x401000  1 page  r-x",
        "only in B: 0x610000-0x611000  1 page  rw-",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
}

#[test]
fn diff_of_an_invalid_image_is_an_error() {
    let d = dir("diff-bad");
    let m = meta(Arch::Amd64, 5);
    let a = write_image(&d, "a.img", &m, &checkpoint(&m));
    let b = d.join("b.img");
    std::fs::write(&b, b"junk").unwrap();
    let (code, _, err) = rtcrctl(&["diff", path(&a), path(&b)]);
    assert_eq!(code, 2);
    assert!(err.contains("b.img: invalid image: too short"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    for args in [&[][..], &["frobnicate"][..], &["verify"][..], &["diff", "x"][..], &["inspect", "--bogus", "x"][..]] {
        let (code, out, err) = rtcrctl(args);
        assert_eq!(code, 2, "{args:?}: {out}{err}");
        assert!(err.contains("usage: rtcrctl"), "{args:?}: {err}");
    }
    let (code, out, _) = rtcrctl(&["help"]);
    assert_eq!(code, 0);
    assert!(out.contains("verify --store FILE"));
}

#[test]
fn simulate_runs_the_scenario_and_writes_its_images() {
    let dir = std::env::temp_dir().join(format!("rtcrctl-sim-{}", std::process::id()));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rtcrctl"))
        .args(["simulate", "--checkpoints", "2", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("crashed"), "{text}");
    assert!(text.contains("restored from checkpoint"), "{text}");
    let verdict = text.lines().find(|l| l.starts_with("VERDICT:")).expect("a verdict");
    assert!(verdict.contains(" 0 missing"), "{verdict}");
    // the images it wrote verify
    let img = dir.join("checkpoint-0.rtcr");
    let v = std::process::Command::new(env!("CARGO_BIN_EXE_rtcrctl")).arg("verify").arg(&img).output().unwrap();
    assert_eq!(v.status.code(), Some(0), "{}", String::from_utf8_lossy(&v.stdout));
    let s = std::process::Command::new(env!("CARGO_BIN_EXE_rtcrctl"))
        .args(["verify", "--store"])
        .arg(dir.join("store.bin"))
        .output()
        .unwrap();
    assert_eq!(s.status.code(), Some(0), "{}", String::from_utf8_lossy(&s.stdout));
    let _ = std::fs::remove_dir_all(&dir);
    // an unknown architecture is a usage error
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_rtcrctl"))
        .args(["simulate", "--arch", "mips"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn reassemble_turns_a_console_dump_back_into_the_image() {
    let d = dir("reassemble");
    let m = meta(Arch::Amd64, 7);
    let img = std::fs::read(write_image(&d, "orig.img", &m, &checkpoint(&m))).unwrap();
    // a console log: rtcr's lines among the kernel's and the child's
    let mut log = String::from("rtcr: checkpoint 7: 3 pages copied\nKERNEL: Warning: x\n");
    rtcr_image::dump::write_lines(7, &img, |l| {
        log.push_str(l);
        log.push_str("\r\nrtcr-demo: demo: count 64\n");
    });
    std::fs::write(d.join("boot.log"), &log).unwrap();
    let out = d.join("back.img");
    let (code, stdout, _) = rtcrctl(&["reassemble", path(&d.join("boot.log")), path(&out)]);
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("checkpoint 7"), "{stdout}");
    assert_eq!(std::fs::read(&out).unwrap(), img);
    // a log whose dump lost a line: refused, nothing written
    let cut: String = log.lines().filter(|l| !l.contains(" 00000060 ")).map(|l| format!("{l}\n")).collect();
    std::fs::write(d.join("cut.log"), cut).unwrap();
    let (code, stdout, _) = rtcrctl(&["reassemble", path(&d.join("cut.log")), path(&d.join("none.img"))]);
    assert_eq!(code, 1);
    assert!(stdout.contains("missing") && stdout.contains("0x60"), "{stdout}");
    assert!(!d.join("none.img").exists());
    // a log that cannot be read
    let (code, stdout, _) = rtcrctl(&["reassemble", path(&d.join("nothing.log")), "x"]);
    assert_eq!(code, 2, "{stdout}");
}

#[test]
fn log_reads_rtcrs_defmt_table_and_passes_other_lines_through() {
    // the bare-metal rtcr that scripts/check.sh builds (its defmt table)
    let Some(elf) = std::env::var_os("RTCR_ELF_X86_64") else {
        eprintln!("SKIPPED: RTCR_ELF_X86_64 not set (scripts/check.sh builds rtcr and sets it)");
        return;
    };
    let d = dir("log");
    let log = d.join("serial.log");
    std::fs::write(&log, "rtcr: root task up on x86_64\nrtcr-demo: demo: count 64\nrtcr-defmt 0g\nKERNEL: x\n")
        .unwrap();
    let (code, out, err) = rtcrctl(&["log", "--elf", elf.to_str().unwrap(), path(&log)]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "rtcr: root task up on x86_64");
    assert_eq!(lines[1], "rtcr-demo: demo: count 64");
    assert!(lines[2].contains("damaged rtcr-defmt line"), "{out}");
    assert_eq!(lines[3], "KERNEL: x");
    // `-` is standard input
    let piped = Command::new(env!("CARGO_BIN_EXE_rtcrctl"))
        .args(["log", "--elf", elf.to_str().unwrap(), "-"])
        .stdin(std::fs::File::open(&log).unwrap())
        .output()
        .unwrap();
    assert!(piped.status.success());
    assert_eq!(String::from_utf8(piped.stdout).unwrap(), out);
    // an ELF without a defmt table is refused with the reason
    let (code, _, err) = rtcrctl(&["log", "--elf", path(&log), path(&log)]);
    assert_eq!(code, 2, "{err}");
}

/// rzCOBS, the framing defmt uses (what `defmt::Encoder` does on the
/// target), for a frame whose every run of 7 bytes from the end holds a
/// zero byte (the test's frames: an index and a zero timestamp), then the
/// frame separator.
fn rzcobs(frame: &[u8]) -> Vec<u8> {
    // the decoder works from the end in groups of 7: zeros after the frame
    // make it whole groups (the table decoder stops at the frame's end)
    let mut padded = frame.to_vec();
    while !padded.len().is_multiple_of(7) {
        padded.push(0);
    }
    let rev: Vec<u8> = padded.into_iter().rev().collect();
    let mut read_backwards = Vec::new();
    for group in rev.chunks(7) {
        let mut control = 0u8;
        let mut data = Vec::new();
        for (i, &b) in group.iter().enumerate() {
            if b == 0 {
                control |= 1 << (6 - i);
            } else {
                data.push(b);
            }
        }
        assert!(control != 0, "a group of 7 without a zero byte needs the long form");
        read_backwards.push(control);
        read_backwards.extend(data);
    }
    let mut out: Vec<u8> = read_backwards.into_iter().rev().collect();
    out.push(0);
    out
}

#[test]
fn log_is_a_live_filter_each_line_comes_out_before_the_input_ends() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use std::sync::mpsc;
    use std::time::Duration;

    let Some(elf) = std::env::var_os("RTCR_ELF_X86_64") else {
        eprintln!("SKIPPED: RTCR_ELF_X86_64 not set (scripts/check.sh builds rtcr and sets it)");
        return;
    };
    // a frame of rtcr's table: a format string without arguments, found by
    // decoding (index, timestamp 0) with the library rtcrctl uses
    let bytes = std::fs::read(&elf).unwrap();
    let table = defmt_decoder::Table::parse(&bytes).unwrap().expect("rtcr has a defmt table");
    let (frame, text) = table
        .indices()
        .find_map(|i| {
            let mut f = (i as u16).to_le_bytes().to_vec();
            f.extend([0u8; 8]);
            let (decoded, used) = table.decode(&f).ok()?;
            let ts = decoded.display_timestamp().map(|t| format!("{t} ")).unwrap_or_default();
            (used == f.len()).then(|| (f.clone(), format!("{ts}{}", decoded.display_message())))
        })
        .expect("rtcr logs at least one line without arguments");
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let encoded = rzcobs(&frame);

    let mut child = Command::new(env!("CARGO_BIN_EXE_rtcrctl"))
        .args(["log", "--elf", elf.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    // each line in gives its line out while the input is still open
    let send = |stdin: &mut std::process::ChildStdin, input: &str| {
        stdin.write_all(input.as_bytes()).unwrap();
        stdin.flush().unwrap();
    };
    let next =
        |input: &str| rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("nothing out for {input:?}"));
    for (input, want) in [
        ("KERNEL: a line of the kernel's\n".to_string(), "KERNEL: a line of the kernel's"),
        (format!("rtcr-defmt {}\n", hex(&encoded)), text.as_str()),
        ("rtcr-demo: demo: count 64\r\n".to_string(), "rtcr-demo: demo: count 64"),
    ] {
        send(&mut stdin, &input);
        assert_eq!(next(&input), want, "for {input:?}");
    }
    // a frame cut over two lines (the target writes 160 bytes a line): the
    // text comes with the second
    let (first, second) = encoded.split_at(encoded.len() / 2);
    send(&mut stdin, &format!("rtcr-defmt {}\n", hex(first)));
    assert_eq!(rx.recv_timeout(Duration::from_millis(300)).ok(), None, "half a frame is no line yet");
    let input = format!("rtcr-defmt {}\n", hex(second));
    send(&mut stdin, &input);
    assert_eq!(next(&input), text);
    // then the end of the input ends rtcrctl, with nothing left over
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).ok(), None);
}

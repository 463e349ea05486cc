//! The simulation `rtcrctl simulate` runs: the scenario child under rtcr on
//! the kernel model — set-up, periodic checkpoints, a crash, the restore,
//! and a migration to a second, fresh kernel from the newest image — told
//! as lines a person can follow, with the capability tables before the
//! checkpoint and after the restore side by side and a verdict.

use std::fmt::Write as _;
use std::path::PathBuf;

use fiasco_model::{CapRow, Model};
use l4_sys::exc::Arch;
use rtcr_core::driver::{Driver, Event, Policy};
use rtcr_core::Supervisor;
use rtcr_image::{MemRegion, Store};

use crate::child::{COUNTER, CRASH_AT};
use crate::{scenario_model, spec, ModelEnv};

/// What to simulate.
#[derive(Clone, Debug)]
pub struct Options {
    /// Which architecture's ABI.
    pub arch: Arch,
    /// Checkpoint interval (model time), µs.
    pub interval_us: u64,
    /// How many checkpoints before the crash.
    pub checkpoints: u32,
    /// Write every image (and the store) here.
    pub out: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options { arch: Arch::Amd64, interval_us: 10_000, checkpoints: 3, out: None }
    }
}

/// What happened.
#[derive(Debug, Default)]
pub struct Report {
    /// The story, line by line.
    pub lines: Vec<String>,
    /// The child's capabilities at the last checkpoint.
    pub before: Vec<CapRow>,
    /// The child's capabilities after the restore on the second kernel.
    pub after: Vec<CapRow>,
    /// Slots that match (type, rights, label) / slots before.
    pub matched: (usize, usize),
    /// Every image written, in order.
    pub images: Vec<Vec<u8>>,
    /// Counter at the newest image, and after the migrated child ran.
    pub counter: (u64, u64),
}

impl Report {
    /// Did everything come back?
    pub fn ok(&self) -> bool {
        self.matched.0 == self.matched.1 && self.matched.1 > 0 && self.counter.1 > self.counter.0
    }
}

fn counter(m: &Model, sup: &Supervisor) -> u64 {
    u64::from_le_bytes(m.peek(crate::child_obj(m, sup), COUNTER, 8).unwrap_or_default().try_into().unwrap_or([0; 8]))
}

fn row_text(r: &CapRow) -> String {
    let label = r.label.map(|l| format!(" {l:#x}")).unwrap_or_default();
    format!("{:#06x} {:<7} {}{}", r.idx, r.kind.jdb_name(), r.rights_str(), label)
}

fn same(a: &CapRow, b: &CapRow) -> bool {
    (a.idx, a.kind, a.rights, a.label) == (b.idx, b.kind, b.rights, b.label)
}

/// Runs the simulation.
pub fn run(opts: &Options) -> Result<Report, String> {
    let mut rep = Report::default();
    let say = |rep: &mut Report, s: String| rep.lines.push(s);
    let policy = Policy { interval_us: opts.interval_us, ..Policy::default() };
    let mut m = scenario_model(opts.arch);
    let store_bytes;
    {
        let mut r = m.root();
        let mut env = ModelEnv(&mut r);
        let store = Store::new(MemRegion::zeroed(4 << 20));
        let mut d = Driver::start(&mut env, spec("scenario"), store, policy).map_err(|e| format!("start: {e}"))?;
        say(&mut rep, format!("rtcr: started child 'scenario' on the {:?} model", opts.arch));
        let t0 = env.0.model().clock_us();
        // set-up: the child creates its threads, gates and IRQs
        d.run_until(&mut env, t0 + opts.interval_us / 2).map_err(|e| format!("{e}"))?;
        let mm = env.0.model();
        let ct = crate::child_obj(mm, &d.sup);
        say(&mut rep, "rtcr: the child's capability space (as rtcr serves it):".to_string());
        for line in mm.cap_listing(ct).lines() {
            say(&mut rep, format!("    {line}"));
        }
        // periodic checkpoints, with the hardware line firing
        let mut seen = 0;
        while d.events.iter().filter(|e| matches!(e, Event::Checkpoint { .. })).count() < opts.checkpoints as usize {
            env.0.model().fire_hw_irq(crate::child::HW_LINE as u32);
            let now = env.0.model().clock_us();
            d.run_until(&mut env, now + opts.interval_us / 4).map_err(|e| format!("{e}"))?;
            if env.0.model().clock_us() > t0 + 100 * opts.interval_us {
                return Err("no checkpoint happened".into());
            }
            for e in &d.events[seen..] {
                if let Event::Checkpoint { stats, slot, bytes } = e {
                    rep.lines.push(format!(
                        "rtcr: checkpoint {}: {} thread(s) stopped, {} page(s) copied, pause {} µs (model clock), {} bytes into slot {}",
                        stats.seq,
                        stats.threads,
                        stats.pages_copied,
                        stats.pause_us,
                        bytes,
                        if *slot == 0 { 'A' } else { 'B' }
                    ));
                }
            }
            seen = d.events.len();
            if let Ok((_, b)) = d.store.latest() {
                if rep.images.last() != Some(&b) {
                    rep.images.push(b);
                }
            }
        }
        let mm = env.0.model();
        rep.before = mm.cap_table(crate::child_obj(mm, &d.sup));
        // the crash
        let c = counter(env.0.model(), &d.sup);
        let ct = crate::child_obj(env.0.model(), &d.sup);
        env.0.model().poke(ct, CRASH_AT, &(c + 3).to_le_bytes());
        say(&mut rep, format!("test: main will fail its counter check at {}", c + 3));
        let now = env.0.model().clock_us();
        d.run_until(&mut env, now + opts.interval_us / 2).map_err(|e| format!("{e}"))?;
        for e in &d.events[seen..] {
            match e {
                Event::Crash { thread, code } => {
                    rep.lines.push(format!("rtcr: thread {thread} crashed (trap/EC {code:#x})"))
                }
                Event::Restored { seq, backoff_us, took_us } => rep.lines.push(format!(
                    "rtcr: restored from checkpoint {seq} after {backoff_us} µs backoff in {took_us} µs (model clock)"
                )),
                Event::Checkpoint { stats, .. } => rep.lines.push(format!("rtcr: checkpoint {}", stats.seq)),
                Event::CheckpointFailed(w) => rep.lines.push(format!("rtcr: checkpoint failed: {w}")),
                Event::ImageRefused(w) => rep.lines.push(format!("rtcr: image refused: {w}")),
                Event::RestoreFailed { seq, why } => {
                    rep.lines.push(format!("rtcr: restoring checkpoint {seq} failed, trying the older one: {why}"))
                }
                Event::StartedAfresh => rep.lines.push("rtcr: no image could be restored: started afresh".into()),
                Event::LoopCrash { seq, failures } => {
                    rep.lines.push(format!("rtcr: crash loop (image {seq:?}, failure {failures})"))
                }
                Event::ImageAbandoned { seq, failures } => {
                    rep.lines.push(format!("rtcr: checkpoint {seq} failed {failures} times: not restored again"))
                }
                Event::CrashSite { ip, addr } => {
                    rep.lines.push(format!("rtcr: the crash: ip {ip:#x}, address {addr:#x}"))
                }
                Event::Unserved(u) => rep.lines.push(format!(
                    "rtcr: unserved request to {}: protocol {:#x}, words {:x?}",
                    rtcr_core::labels::name(u.service),
                    u.protocol,
                    u.words
                )),
                Event::Exited { code, restarted } => {
                    rep.lines.push(format!("rtcr: the child exited with code {code} (restarted: {restarted})"))
                }
                Event::CpuMoved(m) => rep.lines.push(format!(
                    "rtcr: thread {} ran on CPU {}, not online here ({:#x}): now on CPU {}",
                    m.thread, m.from, m.online, m.to
                )),
            }
        }
        store_bytes = d.store.region().0.clone();
    }
    drop(m);

    // migration: a second kernel, the newest image only
    let image = rep.images.last().cloned().ok_or("no image")?;
    let (meta, cp) = rtcr_image::decode(&image).map_err(|e| format!("{e}"))?;
    rep.counter.0 = u64::from_le_bytes(
        cp.pages
            .iter()
            .find(|p| p.vaddr == COUNTER & !0xfff)
            .map(|p| p.data[..8].try_into().unwrap_or([0; 8]))
            .unwrap_or([0; 8]),
    );
    rep.lines.push(format!(
        "rtcr: on a second kernel: restoring checkpoint {} ({} objects, {} slots, {} threads, {} pages) from {} bytes",
        meta.sequence,
        cp.objects.len(),
        cp.caps.len(),
        cp.threads.len(),
        cp.pages.len(),
        image.len()
    ));
    let mut m2 = scenario_model(opts.arch);
    {
        let mut r = m2.root();
        let mut env = ModelEnv(&mut r);
        let mut sup =
            Supervisor::restore(&mut env, spec("scenario"), &cp, meta.sequence).map_err(|e| format!("restore: {e}"))?;
        let mm = env.0.model();
        rep.after = mm.cap_table(crate::child_obj(mm, &sup));
        for _ in 0..10 {
            env.0.model().fire_hw_irq(crate::child::HW_LINE as u32);
            sup.serve(&mut env, 200, l4_sys::Timeout::from_us(2000)).map_err(|e| format!("{e}"))?;
        }
        rep.counter.1 = counter(env.0.model(), &sup);
    }
    // the tables, side by side
    rep.lines.push(format!("{:<40} | {}", "before the checkpoint", "after the restore (second kernel)"));
    let slots: std::collections::BTreeSet<u64> = rep.before.iter().chain(rep.after.iter()).map(|r| r.idx).collect();
    let mut matched = 0;
    for s in &slots {
        let b = rep.before.iter().find(|r| r.idx == *s);
        let a = rep.after.iter().find(|r| r.idx == *s);
        let ok = matches!((b, a), (Some(x), Some(y)) if same(x, y));
        matched += ok as usize;
        let mut line = String::new();
        let _ = write!(
            line,
            "{:<40} | {:<40} {}",
            b.map(row_text).unwrap_or_else(|| "(missing)".into()),
            a.map(row_text).unwrap_or_else(|| "(missing)".into()),
            if ok { "ok" } else { "DIFFERS" }
        );
        rep.lines.push(line);
    }
    rep.matched = (matched, rep.before.len());
    rep.lines.push(format!(
        "VERDICT: {}/{} slots restored with the same type, rights and label, {} missing; counter {} at the image, {} after running on",
        matched,
        rep.before.len(),
        rep.before.len() - matched,
        rep.counter.0,
        rep.counter.1
    ));
    if let Some(dir) = &opts.out {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for (i, img) in rep.images.iter().enumerate() {
            let p = dir.join(format!("checkpoint-{i}.rtcr"));
            std::fs::write(&p, img).map_err(|e| format!("{}: {e}", p.display()))?;
        }
        let p = dir.join("store.bin");
        std::fs::write(&p, &store_bytes).map_err(|e| format!("{}: {e}", p.display()))?;
        rep.lines.push(format!("images written to {}", dir.display()));
    }
    Ok(rep)
}

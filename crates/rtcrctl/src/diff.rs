//! `rtcrctl diff A B`: what changed between two checkpoints.
//!
//! Records are compared by what identifies them across images: objects by
//! index (bindings refer to them that way), capabilities by slot (what the
//! child sees), threads by index, pages by address. Pages are compared byte
//! for byte and reported as runs, so a diff of two checkpoints of a running
//! child says which memory it wrote in between. Exit 0 when identical, 1
//! when not, 2 when an image cannot be read or decoded.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::process::ExitCode;

use rtcr_image::{decode, Checkpoint, ImageMeta, PageRecord, ThreadRecord};

use crate::{positional, read_file, show, EXIT_ERROR, EXIT_FAIL, EXIT_OK};

/// Runs the subcommand.
pub fn run(args: &[OsString]) -> ExitCode {
    let paths = match positional(args, 2, "diff") {
        Ok(a) => a,
        Err(code) => return code,
    };
    let a = match load(&paths[0]) {
        Ok(image) => image,
        Err(code) => return code,
    };
    let b = match load(&paths[1]) {
        Ok(image) => image,
        Err(code) => return code,
    };
    println!("--- A {}", paths[0].to_string_lossy());
    println!("+++ B {}", paths[1].to_string_lossy());
    let sections = [
        ("header", header(&a.0, &b.0)),
        ("child", child(&a.1, &b.1)),
        ("objects", objects(&a.1, &b.1)),
        ("capabilities", caps(&a.1, &b.1)),
        ("threads", threads(&a.0, &a.1, &b.1)),
        ("pages", pages((&a.0, &a.1.pages), (&b.0, &b.1.pages))),
    ];
    let mut count = 0;
    for (name, lines) in &sections {
        if lines.is_empty() {
            continue;
        }
        println!("{name}:");
        for l in lines {
            println!("  {l}");
        }
        count += lines.len();
    }
    if count == 0 {
        println!("identical");
        ExitCode::from(EXIT_OK)
    } else {
        println!("{count} difference{}", if count == 1 { "" } else { "s" });
        ExitCode::from(EXIT_FAIL)
    }
}

/// Reads and decodes one image, or says on stderr why not.
fn load(path: &OsString) -> Result<(ImageMeta, Checkpoint), ExitCode> {
    let bytes = read_file(path)?;
    decode(&bytes).map_err(|e| {
        eprintln!("rtcrctl: {}: invalid image: {e}", path.to_string_lossy());
        ExitCode::from(EXIT_ERROR)
    })
}

/// `name: a -> b` when they differ.
fn field<T: PartialEq + std::fmt::Display>(out: &mut Vec<String>, name: &str, a: T, b: T) {
    if a != b {
        out.push(format!("{name}: {a} -> {b}"));
    }
}

fn header(a: &ImageMeta, b: &ImageMeta) -> Vec<String> {
    let mut out = Vec::new();
    field(&mut out, "arch", a.arch, b.arch);
    field(&mut out, "page shift", a.page_shift, b.page_shift);
    field(&mut out, "sequence", a.sequence, b.sequence);
    field(&mut out, "clock us", a.clock_us, b.clock_us);
    out
}

fn child(a: &Checkpoint, b: &Checkpoint) -> Vec<String> {
    let mut out = Vec::new();
    field(&mut out, "name", format!("{:?}", a.child), format!("{:?}", b.child));
    let area = |c: &Checkpoint| format!("{:#x}/{}", c.utcb_area.0, c.utcb_area.1);
    field(&mut out, "utcb area", area(a), area(b));
    out
}

fn objects(a: &Checkpoint, b: &Checkpoint) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..a.objects.len().max(b.objects.len()) {
        match (a.objects.get(i), b.objects.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => out.push(format!("#{i}: {} -> {}", show::object(a, x), show::object(b, y))),
            (Some(x), None) => out.push(format!("#{i} only in A: {}", show::object(a, x))),
            (None, Some(y)) => out.push(format!("#{i} only in B: {}", show::object(b, y))),
            (None, None) => {}
        }
    }
    out
}

fn caps(a: &Checkpoint, b: &Checkpoint) -> Vec<String> {
    let table = |c: &Checkpoint| c.caps.iter().map(|r| (r.slot, show::cap(c, r))).collect::<BTreeMap<_, _>>();
    let (ta, tb) = (table(a), table(b));
    let mut slots: Vec<u64> = ta.keys().chain(tb.keys()).copied().collect();
    slots.sort_unstable();
    slots.dedup();
    let mut out = Vec::new();
    for slot in slots {
        match (ta.get(&slot), tb.get(&slot)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => out.push(format!("slot {slot:#x}: {x} -> {y}")),
            (Some(x), None) => out.push(format!("slot {slot:#x} only in A: {x}")),
            (None, Some(y)) => out.push(format!("slot {slot:#x} only in B: {y}")),
            (None, None) => {}
        }
    }
    out
}

fn threads(meta: &ImageMeta, a: &Checkpoint, b: &Checkpoint) -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..a.threads.len().max(b.threads.len()) {
        match (a.threads.get(i), b.threads.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => out.push(format!("thread {i}: {}", thread_changes(meta, x, y).join(", "))),
            (Some(_), None) => out.push(format!("thread {i} only in A")),
            (None, Some(_)) => out.push(format!("thread {i} only in B")),
            (None, None) => {}
        }
    }
    out
}

fn thread_changes(meta: &ImageMeta, a: &ThreadRecord, b: &ThreadRecord) -> Vec<String> {
    let mut out = Vec::new();
    let hex = |v: u64| format!("{v:#x}");
    field(&mut out, "utcb", hex(a.utcb), hex(b.utcb));
    field(&mut out, "prio", a.prio, b.prio);
    field(&mut out, "quantum us", a.quantum_us, b.quantum_us);
    field(&mut out, "pager", hex(a.pager_slot), hex(b.pager_slot));
    field(&mut out, "exc", hex(a.exc_slot), hex(b.exc_slot));
    field(&mut out, "state", show::state(a.state), show::state(b.state));
    let (aip, asp) = show::ip_sp(meta.arch, &a.regs);
    let (bip, bsp) = show::ip_sp(meta.arch, &b.regs);
    field(&mut out, "ip", show::reg(aip), show::reg(bip));
    field(&mut out, "sp", show::reg(asp), show::reg(bsp));
    let skip = [meta.arch.ip_index(), meta.arch.sp_index()];
    let regs: Vec<usize> =
        (0..a.regs.len().max(b.regs.len())).filter(|i| !skip.contains(i) && a.regs.get(*i) != b.regs.get(*i)).collect();
    if !regs.is_empty() {
        out.push(format!("regs {regs:?} differ"));
    }
    let words =
        (0..a.utcb_words.len().max(b.utcb_words.len())).filter(|&i| a.utcb_words.get(i) != b.utcb_words.get(i)).count();
    if words > 0 {
        out.push(format!("{words} utcb word{} differ", if words == 1 { "" } else { "s" }));
    }
    out
}

fn by_address(pages: &[PageRecord]) -> BTreeMap<u64, &PageRecord> {
    pages.iter().map(|r| (r.vaddr, r)).collect()
}

fn pages((meta_a, a): (&ImageMeta, &[PageRecord]), (meta_b, b): (&ImageMeta, &[PageRecord])) -> Vec<String> {
    let (ma, mb) = (by_address(a), by_address(b));
    let mut out = Vec::new();
    let mut only_a = Vec::new();
    let mut only_b = Vec::new();
    for (&vaddr, pa) in &ma {
        match mb.get(&vaddr) {
            None => only_a.push((vaddr, pa.rights)),
            Some(pb) if pa == pb => {}
            Some(pb) => {
                let n = pa.data.len().max(pb.data.len());
                let (da, db) = (pa.bytes(n), pb.bytes(n));
                let bytes = da.iter().zip(db.iter()).filter(|(x, y)| x != y).count() + da.len().abs_diff(db.len());
                let mut what = Vec::new();
                if bytes > 0 {
                    what.push(format!("{bytes} byte{} differ", if bytes == 1 { "" } else { "s" }));
                }
                if pa.rights != pb.rights {
                    what.push(format!("rights {} -> {}", show::page_rights(pa.rights), show::page_rights(pb.rights)));
                }
                out.push(format!("differs: {vaddr:#x} ({})", what.join(", ")));
            }
        }
    }
    for (&vaddr, pb) in &mb {
        if !ma.contains_key(&vaddr) {
            only_b.push((vaddr, pb.rights));
        }
    }
    for r in show::runs(only_a, meta_a.page_size() as u64) {
        out.push(format!("only in A: {}", show::run(&r)));
    }
    for r in show::runs(only_b, meta_b.page_size() as u64) {
        out.push(format!("only in B: {}", show::run(&r)));
    }
    out
}

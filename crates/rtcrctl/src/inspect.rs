//! `rtcrctl inspect IMAGE`: everything an image holds, in tables a person
//! can check against the child's source and against a JDB dump.
//!
//! The header is printed as soon as it checks out, before the body is
//! decoded, so a damaged image still shows where and when it came from.

use std::ffi::OsString;
use std::process::ExitCode;

use rtcr_image::{decode, read_header, Checkpoint, ImageMeta};

use crate::{positional, read_file, show, EXIT_FAIL, EXIT_OK};

/// Runs the subcommand.
pub fn run(args: &[OsString]) -> ExitCode {
    let path = match positional(args, 1, "inspect") {
        Ok(a) => &a[0],
        Err(code) => return code,
    };
    let bytes = match read_file(path) {
        Ok(b) => b,
        Err(code) => return code,
    };
    println!("image      {} ({} bytes)", path.to_string_lossy(), bytes.len());
    let header = match read_header(&bytes) {
        Ok(h) => h,
        Err(e) => {
            println!("error: {e}");
            return ExitCode::from(EXIT_FAIL);
        }
    };
    println!("format     version {}, flags {:#x}", header.format_version, header.flags);
    println!("arch       {}", header.arch);
    println!("page size  {} bytes (shift {})", 1u64 << header.page_shift, header.page_shift);
    println!("sequence   {}", header.sequence);
    println!("clock      {} us ({})", header.clock_us, seconds(header.clock_us));
    println!("body       {} bytes, {} {:#018x}", header.body_len, header.checksum().name(), header.body_crc);
    println!("header     {} {:#018x}", header.checksum().name(), header.header_crc);
    match decode(&bytes) {
        Ok((meta, cp)) => {
            print_records(&meta, &cp);
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            // A valid header on a bad image is still a bad image.
            println!("error: {e}");
            ExitCode::from(EXIT_FAIL)
        }
    }
}

/// `12.345678 s`.
fn seconds(us: u64) -> String {
    format!("{}.{:06} s", us / 1_000_000, us % 1_000_000)
}

/// Left-aligned columns, two spaces apart, each as wide as its widest cell.
fn table(head: &[&str], rows: &[Vec<String>]) {
    let mut width: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::from("  ");
        for (i, (cell, w)) in cells.iter().zip(&width).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(cell);
            } else {
                s.push_str(&format!("{cell:<w$}  "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(head.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn print_records(meta: &ImageMeta, cp: &Checkpoint) {
    println!("child      {:?}", cp.child);
    println!("utcb area  {:#x} (log2 size {})", cp.utcb_area.0, cp.utcb_area.1);

    println!();
    println!("objects ({})", cp.objects.len());
    let rows: Vec<Vec<String>> = cp
        .objects
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let desc = show::object(cp, o);
            let kind = show::kind(o);
            let rest = desc.strip_prefix(&kind).unwrap_or(&desc).trim_start_matches(", ").to_string();
            vec![format!("#{i}"), kind, rest]
        })
        .collect();
    table(&["obj", "kind", "details"], &rows);

    println!();
    println!("capabilities ({})", cp.caps.len());
    let mut caps: Vec<_> = cp.caps.iter().collect();
    caps.sort_by_key(|c| c.slot);
    let rows: Vec<Vec<String>> = caps
        .iter()
        .map(|c| {
            let [kind, rights, server, label, bound] = show::cap_columns(cp, c);
            vec![format!("{:#x}", c.slot), kind, rights, server, label, bound, format!("#{}", c.object)]
        })
        .collect();
    table(&["slot", "type", "rights", "server", "label", "bound", "obj"], &rows);

    println!();
    println!("threads ({})", cp.threads.len());
    let (ip, sp) = match meta.arch {
        rtcr_image::Arch::Amd64 => ("ip", "sp"),
        rtcr_image::Arch::Arm64 => ("pc", "sp"),
    };
    let rows: Vec<Vec<String>> = cp
        .threads
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let (ipv, spv) = show::ip_sp(meta.arch, &t.regs);
            let quantum = if t.quantum_us == 0 { "default".into() } else { format!("{} us", t.quantum_us) };
            // an image from before placements (format 3) names no CPU
            let cpu = cp.placement.iter().find(|p| p.thread as usize == i).map_or("-".into(), |p| p.cpu.to_string());
            vec![
                i.to_string(),
                format!("{:#x}", t.utcb),
                t.prio.to_string(),
                quantum,
                cpu,
                show::state(t.state).into(),
                show::reg(ipv),
                show::reg(spv),
                format!("{:#x}", t.pager_slot),
                format!("{:#x}", t.exc_slot),
            ]
        })
        .collect();
    table(&["thread", "utcb", "prio", "quantum", "cpu", "state", ip, sp, "pager", "exc"], &rows);

    println!();
    let size = meta.page_size() as u64;
    println!("pages ({}, {} bytes)", cp.pages.len(), cp.pages.len() as u64 * size);
    for r in show::page_runs(&cp.pages, size) {
        println!("  {}", show::run(&r));
    }
}

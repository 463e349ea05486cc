//! `rtcrctl simulate [--arch x86_64|aarch64] [--interval-us N]
//! [--checkpoints N] [--out DIR]`: the scenario child under rtcr on the
//! kernel model — set-up, checkpoints, a crash, the restore, a migration to a
//! second kernel — and the capability tables before and after, side by side,
//! with a verdict. Exit 0 when everything came back, 1 when not.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use l4_sys::exc::Arch;
use rtcr_sim::simulate::{run as simulate, Options};

use crate::{usage_error, EXIT_FAIL, EXIT_OK};

/// Runs the subcommand.
pub fn run(args: &[OsString]) -> ExitCode {
    let mut o = Options::default();
    let mut it = args.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(a) = it.next() {
        let mut val = |what: &str| it.next().ok_or_else(|| usage_error(&format!("simulate: {what} needs a value")));
        match a.as_str() {
            "--arch" => match val("--arch").map(|v| v.to_string()) {
                Ok(v) if v == "x86_64" || v == "amd64" => o.arch = Arch::Amd64,
                Ok(v) if v == "aarch64" || v == "arm64" => o.arch = Arch::Arm64,
                Ok(v) => return usage_error(&format!("simulate: unknown architecture '{v}'")),
                Err(e) => return e,
            },
            "--interval-us" => match val("--interval-us").map(|v| v.parse::<u64>()) {
                Ok(Ok(n)) if n >= 100 => o.interval_us = n,
                Ok(_) => return usage_error("simulate: --interval-us takes a number >= 100"),
                Err(e) => return e,
            },
            "--checkpoints" => match val("--checkpoints").map(|v| v.parse::<u32>()) {
                Ok(Ok(n)) if (1..=1000).contains(&n) => o.checkpoints = n,
                Ok(_) => return usage_error("simulate: --checkpoints takes a number from 1 to 1000"),
                Err(e) => return e,
            },
            "--out" => match val("--out") {
                Ok(v) => o.out = Some(PathBuf::from(v)),
                Err(e) => return e,
            },
            other => return usage_error(&format!("simulate: unknown argument '{other}'")),
        }
    }
    match simulate(&o) {
        Ok(rep) => {
            for l in &rep.lines {
                println!("{l}");
            }
            ExitCode::from(if rep.ok() { EXIT_OK } else { EXIT_FAIL })
        }
        Err(e) => {
            eprintln!("rtcrctl: simulate: {e}");
            ExitCode::from(EXIT_FAIL)
        }
    }
}

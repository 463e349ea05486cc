//! rtcrctl: the host side of rtcr's checkpoint images.
//!
//! Images leave the ECU (another ECU restores from them, a developer looks at
//! why a restore went wrong), so a person needs to read them without the
//! target: `inspect` shows what an image holds, `verify` says whether it (or
//! a whole A/B store) would be restored and if not exactly why, `diff` shows
//! what changed between two checkpoints. All of it goes through rtcr-image,
//! the same code that writes and restores images on the target.
//!
//! Each subcommand lives in its own module with a `run(args) -> ExitCode`;
//! `main` only dispatches, so new subcommands (`simulate`, on the kernel
//! model) slot in beside them. Arguments are parsed by hand: there are few,
//! and the tool stays free of dependencies.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod diff;
mod inspect;
mod log;
mod reassemble;
mod show;
mod simulate;
mod verify;

use std::ffi::OsString;
use std::process::ExitCode;

/// Exit status: success, the image is valid, the images are identical.
pub const EXIT_OK: u8 = 0;
/// Exit status: the image is invalid, or the images differ.
pub const EXIT_FAIL: u8 = 1;
/// Exit status: usage error, unreadable file, an image diff cannot compare.
pub const EXIT_ERROR: u8 = 2;

const USAGE: &str = "\
usage: rtcrctl <command> [arguments]

commands:
  inspect IMAGE         show an image's header and records
  verify IMAGE          check an image: exit 0 if valid, 1 with the reason if not
  verify --store FILE   check both slots of an A/B store file (the raw region)
  diff A B              compare two images: exit 0 if identical, 1 if not, 2 on error
  log --elf RTCR [LOG]  rtcr's console output with its defmt lines decoded, other
                        lines as they are; from LOG, or standard input until its
                        end (a live filter: each line out as soon as it is in)
  reassemble LOG OUT    the last image rtcr dumped to its console (dump_ms=) back
                        into a file: exit 0 if it is complete and valid, 1 if not
  simulate [--arch x86_64|aarch64] [--interval-us N] [--checkpoints N] [--out DIR]
                        run the scenario child under rtcr on the kernel model:
                        checkpoints, a crash, the restore, a migration; exit 0
                        when every capability and the counter came back
  help                  show this text
";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let command = args.first().map(|a| a.to_string_lossy().into_owned());
    let rest = args.get(1..).unwrap_or(&[]);
    match command.as_deref() {
        Some("inspect") => inspect::run(rest),
        Some("verify") => verify::run(rest),
        Some("diff") => diff::run(rest),
        Some("reassemble") => reassemble::run(rest),
        Some("log") => log::run(rest),
        Some("simulate") => simulate::run(rest),
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            ExitCode::from(EXIT_OK)
        }
        Some(other) => usage_error(&format!("unknown command '{other}'")),
        None => usage_error("no command given"),
    }
}

/// Prints `why` and the usage to stderr; exit status 2.
pub fn usage_error(why: &str) -> ExitCode {
    eprintln!("rtcrctl: {why}");
    eprint!("{USAGE}");
    ExitCode::from(EXIT_ERROR)
}

/// Reads a whole file, or says on stderr why not.
pub fn read_file(path: &OsString) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(path).map_err(|e| {
        eprintln!("rtcrctl: cannot read {}: {e}", path.to_string_lossy());
        ExitCode::from(EXIT_ERROR)
    })
}

/// Exactly `n` positional arguments and no options, or a usage error.
pub fn positional<'a>(args: &'a [OsString], n: usize, what: &str) -> Result<&'a [OsString], ExitCode> {
    if let Some(opt) = args.iter().find(|a| a.to_string_lossy().starts_with('-')) {
        return Err(usage_error(&format!("{what}: unknown option '{}'", opt.to_string_lossy())));
    }
    if args.len() != n {
        return Err(usage_error(&format!("{what} takes {n} argument(s), got {}", args.len())));
    }
    Ok(args)
}

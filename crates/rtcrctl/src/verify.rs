//! `rtcrctl verify IMAGE` and `rtcrctl verify --store FILE`: would rtcr
//! restore this, and if not, exactly why.
//!
//! An image is checked as the restorer checks it — header, both CRCs, the
//! body decode and the consistency rules — because an image whose CRCs
//! match but whose records contradict each other is still useless. A store
//! file is the raw A/B region; each slot is reported, then the one a
//! restore would pick.

use std::ffi::OsString;
use std::process::ExitCode;

use rtcr_image::{decode, ImageError, ImageMeta, MemRegion, Slot, SlotStatus, Store};

use crate::{positional, read_file, EXIT_FAIL, EXIT_OK};

/// Runs the subcommand.
pub fn run(args: &[OsString]) -> ExitCode {
    if args.first().is_some_and(|a| a == "--store") {
        return match positional(&args[1..], 1, "verify --store") {
            Ok(a) => store(&a[0]),
            Err(code) => code,
        };
    }
    let path = match positional(args, 1, "verify") {
        Ok(a) => &a[0],
        Err(code) => return code,
    };
    let bytes = match read_file(path) {
        Ok(b) => b,
        Err(code) => return code,
    };
    match check(&bytes) {
        Ok(summary) => {
            println!("ok: {summary}");
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            println!("invalid: {e}");
            ExitCode::from(EXIT_FAIL)
        }
    }
}

/// Decodes (so every check runs) and summarises: `sequence 3, amd64, 6 pages`.
fn check(bytes: &[u8]) -> Result<String, ImageError> {
    let (meta, cp): (ImageMeta, _) = decode(bytes)?;
    let n = cp.pages.len();
    Ok(format!("sequence {}, {}, {n} page{}", meta.sequence, meta.arch, if n == 1 { "" } else { "s" }))
}

fn store(path: &OsString) -> ExitCode {
    let bytes = match read_file(path) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let store = Store::new(MemRegion(bytes));
    println!("store: {} ({} bytes, 2 slots of {})", path.to_string_lossy(), store.region().0.len(), store.slot_len());
    let status = store.status();
    for slot in [Slot::A, Slot::B] {
        let line = match status[slot.index()] {
            // CRCs match: decode too, as a restore would.
            SlotStatus::Valid { .. } => match store.read_slot(slot).map(|img| check(&img)) {
                Ok(Ok(summary)) => format!("valid: {summary}"),
                Ok(Err(e)) => format!("checksums match but the image is invalid: {e}"),
                Err(e) => format!("unreadable: {e}"),
            },
            other => other.to_string(),
        };
        println!("slot {slot}: {line}");
    }
    match store.latest() {
        Ok((slot, image)) => match check(&image) {
            Ok(summary) => {
                println!("latest: slot {slot}, {summary}");
                ExitCode::from(EXIT_OK)
            }
            Err(e) => {
                println!("invalid: the newest slot ({slot}) does not decode: {e}");
                ExitCode::from(EXIT_FAIL)
            }
        },
        Err(e) => {
            println!("invalid: {e}");
            ExitCode::from(EXIT_FAIL)
        }
    }
}

//! `rtcrctl reassemble LOG OUT`: the image rtcr dumped to its console
//! (`dump_ms=` on the roottask line) back into an image file, checked as a
//! restore would check it, ready to be a boot module of another ECU
//! (`restore=`). The line format is `rtcr_image::dump`, shared with rtcr.

use std::ffi::OsString;
use std::process::ExitCode;

use rtcr_image::dump::Reassembler;

use crate::{positional, read_file, EXIT_ERROR, EXIT_FAIL, EXIT_OK};

/// Runs the subcommand.
pub fn run(args: &[OsString]) -> ExitCode {
    let (log, out) = match positional(args, 2, "reassemble") {
        Ok(a) => (&a[0], &a[1]),
        Err(code) => return code,
    };
    let text = match read_file(log) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let mut r = Reassembler::new();
    for line in String::from_utf8_lossy(&text).lines() {
        r.feed(line);
    }
    let (seq, bytes) = match r.finish() {
        Ok(x) => x,
        Err(e) => {
            println!("no image: {e}");
            return ExitCode::from(EXIT_FAIL);
        }
    };
    if let Err(e) = rtcr_image::decode(&bytes) {
        println!("image {seq} reassembled but invalid: {e}");
        return ExitCode::from(EXIT_FAIL);
    }
    if let Err(e) = std::fs::write(out, &bytes) {
        eprintln!("rtcrctl: cannot write {}: {e}", out.to_string_lossy());
        return ExitCode::from(EXIT_ERROR);
    }
    println!("ok: checkpoint {seq}, {} bytes, written to {}", bytes.len(), out.to_string_lossy());
    ExitCode::from(EXIT_OK)
}

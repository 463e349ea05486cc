//! `rtcrctl log --elf RTCR [LOG]`: rtcr's console output with its defmt
//! lines (`rtcr-defmt <hex>`, src/logger.rs) turned back into text, every
//! other line passed through as it is, in order. Reads LOG, or standard
//! input (no LOG, or `-`) until its end, line by line, and writes each line
//! out as soon as it is complete, so it works as a live filter behind QEMU's
//! serial output while a person watches (scripts/qemu-boot.sh does that, as
//! does `make qemu … | rtcrctl log --elf rtcr` in an L4Re build directory).
//! The format strings come from the ELF's `.defmt` table, read by
//! `defmt-decoder` (crates.io), the same decoder probe-rs and defmt-print
//! use.

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::process::ExitCode;

use defmt_decoder::{DecodeError, Table};

use crate::{read_file, usage_error, EXIT_ERROR, EXIT_OK};

const MARK: &str = "rtcr-defmt ";

/// Runs the subcommand.
pub fn run(args: &[OsString]) -> ExitCode {
    let (elf, input) = match args {
        [flag, elf] if flag == "--elf" => (elf, None),
        [flag, elf, log] if flag == "--elf" && log == "-" => (elf, None),
        [flag, elf, log] if flag == "--elf" => (elf, Some(log)),
        _ => return usage_error("log takes --elf RTCR [LOG]"),
    };
    let elf_bytes = match read_file(elf) {
        Ok(b) => b,
        Err(code) => return code,
    };
    let table = match Table::parse(&elf_bytes) {
        Ok(Some(t)) => t,
        Ok(None) => {
            eprintln!("rtcrctl: {} has no defmt table (.defmt section)", elf.to_string_lossy());
            return ExitCode::from(EXIT_ERROR);
        }
        Err(e) => {
            eprintln!("rtcrctl: {}: {e}", elf.to_string_lossy());
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let reader: Box<dyn BufRead> = match input {
        None => Box::new(std::io::stdin().lock()),
        Some(p) => match std::fs::File::open(p) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => {
                eprintln!("rtcrctl: cannot read {}: {e}", p.to_string_lossy());
                return ExitCode::from(EXIT_ERROR);
            }
        },
    };
    let mut out = std::io::stdout().lock();
    match decode_lines(&table, reader, &mut out) {
        Ok(()) => ExitCode::from(EXIT_OK),
        // the reader of our output went away (e.g. `| head`): not an error
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("rtcrctl: {e}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

/// Copies `input` to `out`, decoding defmt lines. A damaged line is shown
/// as such; the decoder resynchronises at the next frame.
pub fn decode_lines(table: &Table, mut input: impl BufRead, out: &mut impl Write) -> std::io::Result<()> {
    let mut decoder = table.new_stream_decoder();
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if input.read_until(b'\n', &mut raw)? == 0 {
            return Ok(());
        }
        let line = String::from_utf8_lossy(&raw);
        let text = line.trim_end_matches(['\n', '\r']);
        let Some(at) = text.find(MARK) else {
            out.write_all(raw.as_slice())?;
            out.flush()?;
            continue;
        };
        // what came before the mark on the same line (another writer's text)
        if at > 0 {
            writeln!(out, "{}", &text[..at])?;
        }
        match hex(text[at + MARK.len()..].trim()) {
            Some(bytes) => decoder.received(&bytes),
            None => writeln!(out, "rtcrctl: a damaged rtcr-defmt line: {text}")?,
        }
        loop {
            match decoder.decode() {
                Ok(frame) => {
                    let ts = frame.display_timestamp().map(|t| format!("{t} ")).unwrap_or_default();
                    writeln!(out, "{ts}{}", frame.display_message())?;
                }
                Err(DecodeError::UnexpectedEof) => break,
                Err(DecodeError::Malformed) => {
                    writeln!(out, "rtcrctl: a malformed defmt frame (skipped)")?;
                    break;
                }
            }
        }
        out.flush()?;
    }
}

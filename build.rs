//! Passes the architecture's linker script (linker/<arch>.ld) when rtcr is
//! built for a bare-metal target; host builds link normally.
//!
//! rtcr runs at its physical link address, which must be free RAM on the
//! machine: `RTCR_LINK_BASE` (hex, 4 KiB aligned) chooses it for a board
//! whose RAM lies elsewhere (boot/BOARDS.md), e.g. `0x08000000` for the
//! Raspberry Pi 4; without it x86_64 links at 0x0800_0000 and aarch64 at
//! 0x4800_0000 (QEMU virt). The linker script reads it from
//! `rtcr-base.ld`, written here into OUT_DIR.

use std::env;
use std::fs;
use std::path::PathBuf;

/// The link base `RTCR_LINK_BASE` names, or why it is no good.
fn parse_base(text: &str) -> Result<u64, String> {
    let digits = text.trim().strip_prefix("0x").or_else(|| text.trim().strip_prefix("0X"));
    let digits = digits.ok_or_else(|| format!("RTCR_LINK_BASE={text:?}: write it in hex, e.g. 0x08000000"))?;
    let base = u64::from_str_radix(&digits.replace('_', ""), 16)
        .map_err(|e| format!("RTCR_LINK_BASE={text:?} is not a hex number: {e}"))?;
    if base == 0 || base % 0x1000 != 0 {
        return Err(format!("RTCR_LINK_BASE={text:?} must be a non-zero multiple of 4 KiB"));
    }
    Ok(base)
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RTCR_LINK_BASE");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os != "none" {
        return;
    }
    let (script, default_base) = match arch.as_str() {
        "x86_64" => ("x86_64.ld", 0x0800_0000u64),
        "aarch64" => ("aarch64.ld", 0x4800_0000u64),
        other => panic!("rtcr has no linker script for {other}"),
    };
    let base = match env::var("RTCR_LINK_BASE") {
        Ok(text) => parse_base(&text).unwrap_or_else(|why| panic!("{why}")),
        Err(_) => default_base,
    };
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());
    fs::write(out.join("rtcr-base.ld"), format!("RTCR_BASE = {base:#x};\n")).expect("cannot write rtcr-base.ld");
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("linker");
    let path = dir.join(script);
    println!("cargo:rerun-if-changed={}", path.display());
    // INCLUDE rtcr-base.ld in the script finds it here
    println!("cargo:rustc-link-arg-bins=-L{}", out.display());
    println!("cargo:rustc-link-arg-bins=-T{}", path.display());
    // defmt's table of log strings (a non-allocated section the host decoder reads)
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    println!("cargo:rustc-link-arg-bins=--no-pie");
    println!("cargo:rustc-link-arg-bins=-static");
    println!("cargo:rustc-link-arg-bins=--build-id=none");
}

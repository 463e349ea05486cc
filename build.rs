//! Passes the architecture's linker script (linker/<arch>.ld) when rtcr is
//! built for a bare-metal target; host builds link normally.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_default();
    if os != "none" {
        return;
    }
    let script = match arch.as_str() {
        "x86_64" => "x86_64.ld",
        "aarch64" => "aarch64.ld",
        other => panic!("rtcr has no linker script for {other}"),
    };
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("linker");
    let path = dir.join(script);
    println!("cargo:rerun-if-changed={}", path.display());
    println!("cargo:rustc-link-arg-bins=-T{}", path.display());
    // defmt's table of log strings (a non-allocated section the host decoder reads)
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    println!("cargo:rustc-link-arg-bins=--no-pie");
    println!("cargo:rustc-link-arg-bins=-static");
    println!("cargo:rustc-link-arg-bins=--build-id=none");
}

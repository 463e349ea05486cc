//! rtcr: the root-task binary.
//!
//! Thin on purpose: the entry stub and stack ([`entry`]), reading what the
//! kernel and bootstrap hand over (KIP, boot modules), and — in later work —
//! the server loop that runs the checkpoint/restore core. For now it is the
//! stub of the foundation issue: it announces itself through the kernel log
//! capability, reports what it finds about the kernel it runs on (initial
//! capabilities, KIP version and features, clock, boot modules), and sleeps.
//!
//! On a host OS this file builds a tiny program that says how to build the
//! real thing, so that `cargo test` over the workspace keeps working.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod entry;
#[cfg(target_os = "none")]
mod env;
#[cfg(target_os = "none")]
mod heap;
#[cfg(target_os = "none")]
mod logger;
#[cfg(target_os = "none")]
mod probe;
#[cfg(target_os = "none")]
mod run;
#[cfg(target_os = "none")]
mod stub;
#[cfg(target_os = "none")]
mod trampoline;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "rtcr is the Fiasco.OC root task: build it with\n  \
         cargo build --release -p rtcr --target x86_64-unknown-none\n  \
         cargo build --release -p rtcr --target aarch64-unknown-none\n\
         and boot it with scripts/qemu-boot.sh (see README.md)."
    );
    std::process::exit(2);
}

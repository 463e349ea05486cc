//! rtcr: the root-task binary. Thin on purpose: the policy is rtcr-core's,
//! what rtcr reads at boot is checked by rtcr-boot; this crate is the part
//! that only runs on the kernel.
//!
//! * [`entry`]: the entry stub (the kernel starts a root task without a stack);
//! * [`boot`]: the boot path — the KIP, the configuration and the boot
//!   modules are read, then the child is started or restored and served;
//! * [`run`]: the server loop around rtcr-core's driver, with the checkpoint
//!   store and the log of what it does;
//! * [`env`], [`trampoline`], [`heap`], [`logger`]: rtcr-core's environment
//!   on the kernel, the UTCB save/load code, the heap, the defmt log;
//! * [`diag`], [`probe`]: diagnostics that run only when the configuration
//!   asks (`report`, `selfcheck`; `probe`, `probe-dump`);
//! * [`protect_bench`]: with `bench`, what write-protecting 4096 pages costs
//!   when they are mapped as 4 KiB pages and as 2 MiB superpages.
//!
//! On a host OS this file builds a tiny program that says how to build the
//! real thing, so that `cargo test` over the workspace keeps working.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod diag;
#[cfg(target_os = "none")]
mod entry;
#[cfg(target_os = "none")]
mod env;
#[cfg(target_os = "none")]
mod fast_path;
#[cfg(target_os = "none")]
mod heap;
#[cfg(target_os = "none")]
mod logger;
#[cfg(target_os = "none")]
mod probe;
#[cfg(target_os = "none")]
mod protect_bench;
#[cfg(target_os = "none")]
mod run;
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

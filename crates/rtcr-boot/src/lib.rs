//! What rtcr reads at boot, checked before anything of it is used.
//!
//! Both inputs come from outside rtcr: the configuration from the
//! `roottask` line of `modules.list` (written by a person), the child from a
//! boot module (built by someone else). A mistake in either must stop rtcr
//! with a message that names the problem, never with a panic or a child
//! loaded half-way. This crate is the host-testable part of that; the root
//! task maps the module and hands the bytes in.
//!
//! - [`config`]: `child=hello interval_ms=100 store_kib=1024 …` → [`config::Config`].
//! - [`elf`]: a static ELF64 executable → its entry and loadable segments,
//!   each checked against the file and against the address range the child
//!   may use.
//! - [`layout`]: where rtcr puts things in the child's address space.

#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod config;
pub mod elf;
pub mod l4re;
pub mod layout;

//! The Fiasco.OC kernel ABI for 64-bit x86 and Arm, spoken directly.
//!
//! Why this crate exists: rtcr runs as the root task and as the parent of a
//! supervised child, with no L4Re C library under it. Everything it says to
//! the kernel — and everything the host model of the kernel must understand —
//! is defined here once:
//!
//! * the data formats of the ABI ([`MsgTag`], [`Fpage`], send items and receive
//!   buffers, [`Timeout`]s, the [`Utcb`] layout, the KIP and boot-module info,
//!   exception-register layouts and page-fault words, error codes);
//! * the **seam** ([`Kernel`]): "this thread enters the kernel with the message
//!   in its UTCB". The asm backend ([`arch`]) implements it with one `syscall`
//!   / `svc #0` site per architecture; the host model implements it by decoding
//!   the same UTCB words; [`fake::FakeKernel`] records them for tests;
//! * one module per kernel-object protocol ([`factory`], [`task`], [`thread`],
//!   [`ipc_gate`], [`irq`], [`icu`], [`scheduler`], [`log`], [`debugger`],
//!   [`sigma0`], [`semaphore`], [`kip`]), each written once over the seam, with
//!   typed capabilities ([`Cap<T>`]). Every wrapper names the l4sys C function
//!   it corresponds to.
//!
//! Facts (numbers, layouts, opcodes) come from the public l4sys headers and
//! the kernel sources; each module cites where. No code of theirs is used.
//! Word size is 64 bit on both architectures.
#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

pub mod arch;
pub mod bootinfo;
pub mod cap;
pub mod debugger;
pub mod error;
pub mod exc;
pub mod factory;
pub mod fpage;
pub mod icu;
pub mod ipc;
pub mod ipc_gate;
pub mod irq;
pub mod item;
pub mod kernel;
pub mod kip;
pub mod l4re;
pub mod log;
pub mod msgtag;
pub mod pagefault;
pub mod rcv_endpoint;
pub mod scheduler;
pub mod semaphore;
pub mod sigma0;
pub mod task;
pub mod thread;
pub mod timeout;
pub mod utcb;

#[cfg(any(test, feature = "fake"))]
pub mod fake;

#[cfg(l4re_headers)]
#[doc(hidden)]
pub mod l4re_bindings;

pub use cap::{Cap, CapIdx};
pub use error::{Errno, Error, IpcError, IpcErrorCode, Phase};
pub use fpage::{CapRights, Fpage, FpageType, MemRights};
pub use kernel::{Invocation, Kernel, Outcome};
pub use msgtag::{MsgTag, Protocol};
pub use timeout::{Timeout, TimeoutPair};
pub use utcb::Utcb;

/// A machine word of the 64-bit ABIs (`l4_umword_t`).
pub type Mword = u64;

/// Size of a page (4 KiB) and its order, on both architectures.
pub const PAGE_SHIFT: u32 = 12;
/// Size of a page in bytes.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

//! rtcr's checkpoint/restore policy: the services a child gets instead of
//! kernel objects, the online state they record, the checkpointer and the
//! restorer.
//!
//! Why a separate, `forbid(unsafe_code)` crate: the policy must be tested on
//! every commit against the kernel model (`fiasco-model`) and run unchanged
//! on the real kernel. It talks to the kernel only through the
//! [`l4_sys::Kernel`] seam and to its own memory through [`Env`]; it does not
//! know which of the two is behind them.
//!
//! # The child contract
//!
//! The child sees the slots a root task gets (1 task, 2 factory, 3 thread,
//! 4 pager, 5 log, 6 ICU, 7 scheduler), but each holds an IPC gate that rtcr
//! serves ([`Service`]). rtcr performs the real operation with its own
//! capabilities, maps the result into the child and records it. Objects the
//! child creates live in rtcr's space too, so a restore can recreate every
//! one of them and map it back into the same slot. See [`supervisor`].
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod calls;
pub mod checkpoint;
pub mod direct_ipc;
pub mod driver;
pub mod fast_path;
pub mod l4re;
pub mod labels;
pub mod pageset;
pub mod regions;
pub mod restore;
pub mod state;
pub mod supervisor;

mod services;

pub use driver::encode_image;
pub use labels::Service;
pub use state::{ChildSpec, L4reSpec, OnExit, Region, Rom, Supervisor};

use l4_sys::exc::Arch;

/// What rtcr needs besides the kernel: access to its own memory (where it
/// keeps the frames it maps into the child) and the clock.
pub trait Env: l4_sys::Kernel {
    /// The architecture.
    fn arch(&self) -> Arch;
    /// Reads rtcr's own memory.
    fn read_mem(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Error>;
    /// Writes rtcr's own memory.
    fn write_mem(&mut self, addr: u64, data: &[u8]) -> Result<(), Error>;
    /// Fills `len` bytes of rtcr's own memory with zeros (a restore's zero
    /// pages; an environment that can store zeros without reading a source
    /// does so).
    fn zero_mem(&mut self, addr: u64, len: usize) -> Result<(), Error> {
        const ZERO: [u8; 4096] = [0; 4096];
        let mut done = 0;
        while done < len {
            let n = (len - done).min(ZERO.len());
            self.write_mem(addr + done as u64, &ZERO[..n])?;
            done += n;
        }
        Ok(())
    }
    /// The kernel clock in µs.
    fn clock_us(&mut self) -> u64;
    /// The free-running counter that l4-sys's kernel entry stamps into
    /// `Arch::restart_regs().stamp` (TSC / CNTVCT_EL0), read now.
    fn stamp_now(&mut self) -> u64;
    /// That counter's frequency in Hz.
    fn stamp_hz(&self) -> u64;
    /// Saves rtcr's own FPU/SIMD registers (after an exception IPC with
    /// TRANSFER_FPU they hold the stopped thread's: FXSAVE / q0–q31).
    fn fpu_save(&mut self) -> alloc::vec::Vec<u8>;
    /// Loads rtcr's own FPU/SIMD registers (before a resume with
    /// TRANSFER_FPU hands them to the thread).
    fn fpu_load(&mut self, state: &[u8]);
}

/// Errors of the supervisor. Errors a child causes are answered to the
/// child with an error reply and never end up here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// The kernel refused an operation rtcr itself made.
    Kernel(l4_sys::Error),
    /// rtcr's own memory could not be read or written.
    Memory(u64),
    /// A configured limit was reached (objects, pages, slots).
    Quota(&'static str),
    /// A checkpoint image could not be used.
    Image(alloc::string::String),
    /// The child did not stop for a checkpoint in time.
    StopTimeout,
    /// Something the protocol between rtcr and its trampoline or child
    /// requires did not hold.
    Protocol(&'static str),
}

impl From<l4_sys::Error> for Error {
    fn from(e: l4_sys::Error) -> Self {
        Error::Kernel(e)
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::Kernel(e) => write!(f, "kernel: {e}"),
            Error::Memory(a) => write!(f, "rtcr memory at {a:#x} not accessible"),
            Error::Quota(w) => write!(f, "quota exhausted: {w}"),
            Error::Image(e) => write!(f, "image: {e}"),
            Error::StopTimeout => write!(f, "child did not stop for the checkpoint"),
            Error::Protocol(w) => write!(f, "protocol: {w}"),
        }
    }
}

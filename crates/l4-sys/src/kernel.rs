//! The seam: "this thread enters the kernel with the message in its UTCB".
//!
//! Fiasco has exactly one system call. Its inputs are four registers
//! (destination selector with operation bits, tag, label, timeout pair) and
//! the thread's UTCB; its outputs are two registers (tag, label) and the UTCB.
//! [`Kernel`] is that, and nothing more — the register-level seam in the
//! spirit of libtock-rs's `RawSyscalls`. Three things implement it:
//!
//! * [`crate::arch::CurrentThread`]: the real kernel, through the one asm site
//!   of the architecture;
//! * the host model of the kernel (`fiasco-model`), which decodes the very
//!   same UTCB words;
//! * [`crate::fake::FakeKernel`]: a recorder with scripted answers for tests.
//!
//! Every protocol encoder in this crate is a function over `K: Kernel`, so the
//! words the host tests see are the words the real kernel gets.
//!
//! The UTCB is reached only through `&mut self`, so no reference into it can
//! be held across [`Kernel::invoke`] — the borrow checker enforces that the
//! kernel's writes during the call are never observed through a stale borrow.

use crate::msgtag::MsgTag;
use crate::timeout::TimeoutPair;
use crate::utcb::Utcb;

/// The registers of one kernel entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// Capability selector | operation bits (rdx / x2), see [`crate::ipc::op`].
    pub dest: u64,
    /// The message tag (rax / x0).
    pub tag: MsgTag,
    /// The label (rsi / x1); only meaningful when sending to a thread
    /// capability, and as the reply label.
    pub label: u64,
    /// Timeout pair (r8 / x3).
    pub timeout: TimeoutPair,
}

/// The registers the kernel returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Returned tag (rax / x0): the received message's tag, or the error flag.
    pub tag: MsgTag,
    /// Returned label (rsi / x1): the received label (gate label | rights bits).
    pub label: u64,
}

/// A thread that can enter the kernel.
pub trait Kernel {
    /// The calling thread's UTCB.
    fn utcb(&mut self) -> &mut Utcb;

    /// Enters the kernel (`l4_ipc()`).
    fn invoke(&mut self, inv: Invocation) -> Outcome;
}

impl<K: Kernel + ?Sized> Kernel for &mut K {
    fn utcb(&mut self) -> &mut Utcb {
        (**self).utcb()
    }
    fn invoke(&mut self, inv: Invocation) -> Outcome {
        (**self).invoke(inv)
    }
}

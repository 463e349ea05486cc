//! A child thread's kernel call across a cut, whoever wrote its entry code.
//!
//! rtcr stops threads with `ex_regs` TRIGGER_EXCEPTION *without* CANCEL
//! first: a thread in user code stops at once; a thread blocked in a kernel
//! call stops only when the call returns, so the call is not disturbed. Only
//! a thread still blocked after rtcr waited for it is cancelled, and only
//! operations that can be issued again exactly are then re-issued — from
//! rtcr's call stub in the trampoline page, so that rtcr learns when the
//! call returns and puts back the registers it changed:
//!
//! * a receive (open or closed wait, a sleep), and the receive phase of a
//!   reply-and-wait or send-and-wait (their send phase was done): the kernel
//!   keeps dest|flags (rdx / x2) and the timeout pair (r8 / x3) through a
//!   cancel, so the receive is issued again with the same partner, with a
//!   relative timeout less what has run;
//! * a call waiting for its reply cannot be re-issued: when a call's
//!   receive phase ends early the kernel takes the callee's reply capability
//!   (`Thread::do_ipc_receive`, `reset_partner_reply_cap`), so the reply
//!   would never come; and a send phase cut has lost its message tag (the
//!   kernel returns `L4_msg_tag(0, 0, Error, 0)`). Such a thread sees the
//!   cancel error (documented in the child contract).
//!
//! Facts (public Fiasco sources, `thread-ipc.cpp`): a receive phase ended by
//! a cancel returns the input tag with the error flag and TCR RECANCELED;
//! a send phase that fails returns tag 0x8000 (TCR SECANCELED for a cancel).

use l4_sys::exc::Arch;

/// Where in the trampoline page the call stub starts.
pub const STUB_OFFSET: u64 = 0x800;

/// The call stub: the kernel entry and a breakpoint after it. rtcr puts a
/// thread there with the call's inputs in the ABI registers; the
/// breakpoint stops it again once the call has returned.
pub fn stub_code(arch: Arch) -> &'static [u8] {
    match arch {
        // syscall; int3
        Arch::Amd64 => &[0x0f, 0x05, 0xcc],
        // svc #0; brk #0
        Arch::Arm64 => &[0x01, 0x00, 0x00, 0xd4, 0x00, 0x00, 0x20, 0xd4],
    }
}

/// The bare kernel-entry instruction (`syscall` / `svc #0`): the bytes a
/// thread's IP follows when it stopped at the return of a kernel call made
/// by any entry code.
pub fn entry_instruction(arch: Arch) -> &'static [u8] {
    match arch {
        Arch::Amd64 => &[0x0f, 0x05],
        Arch::Arm64 => &[0x01, 0x00, 0x00, 0xd4],
    }
}

/// Operation bits of the destination word.
pub mod op {
    /// A send phase.
    pub const SEND: u64 = 0x1;
    /// A receive phase.
    pub const RECV: u64 = 0x2;
    /// The receive is an open wait.
    pub const OPEN_WAIT: u64 = 0x4;
    /// The send phase is a reply.
    pub const REPLY: u64 = 0x8;
}

/// The receive that follows a call's completed send phase, as an
/// operation of its own, if it can be issued again on its own: a receive
/// alone as it is; the receive phase of a reply-and-wait or of a
/// send-and-wait (open wait) without the send; `None` for a call waiting
/// for its reply, and for anything without a receive phase.
pub fn receive_part(dest: u64) -> Option<u64> {
    let ops = dest & 0xf;
    if ops & op::RECV == 0 {
        return None;
    }
    if ops & op::SEND == 0 {
        return Some(dest);
    }
    if ops & (op::REPLY | op::OPEN_WAIT) != 0 {
        return Some(dest & !(op::SEND | op::REPLY));
    }
    None
}

/// The call a thread blocked at the cut was cancelled in, to issue again:
/// its receive part, when the cancel came in the receive phase (TCR
/// `RECANCELED`) and the receive can be issued on its own.
pub fn reissue_after_cancel(dest: u64, tcr: u64) -> Option<u64> {
    if tcr != l4_sys::error::tcr::RECANCELED {
        return None;
    }
    receive_part(dest)
}

/// The timeout pair for a receive issued again `elapsed_us` after the
/// original was made: no send timeout (there is no send phase), a relative
/// receive timeout less the time that has run (zero when it has run out:
/// the receive then times out at once, as it would have), "never" and
/// absolute timeouts as they are.
pub fn rest_of_receive_timeout(pair: u64, elapsed_us: u64) -> u64 {
    let p = l4_sys::TimeoutPair::from_raw(pair);
    let rcv = match p.rcv.rel_us() {
        Some(us) => l4_sys::Timeout::from_us(us.saturating_sub(elapsed_us)),
        None => p.rcv,
    };
    l4_sys::TimeoutPair::new(l4_sys::Timeout::NEVER, rcv).raw()
}

#[cfg(test)]
mod tests {
    use super::*;
    use l4_sys::error::tcr;

    #[test]
    fn what_can_be_issued_again() {
        let gate = 0x20 << 12;
        // receive alone (closed and open), a sleep on the invalid cap
        assert_eq!(receive_part(gate | 0x2), Some(gate | 0x2));
        assert_eq!(receive_part(0xFFFF_FFFF_FFFF_F800 | 0x6), Some(0xFFFF_FFFF_FFFF_F800 | 0x6));
        // reply and wait: the reply went out, the open wait is left
        assert_eq!(receive_part(0xFFFF_FFFF_FFFF_F800 | 0xF), Some(0xFFFF_FFFF_FFFF_F800 | 0x6));
        // send and wait (open)
        assert_eq!(receive_part(gate | 0x7), Some(gate | 0x6));
        // a call: its reply capability is gone with the cancel
        assert_eq!(receive_part(gate | 0x3), None);
        // a send alone
        assert_eq!(receive_part(gate | 0x1), None);
        // only a cancel in the receive phase
        assert_eq!(reissue_after_cancel(gate | 0x6, tcr::RECANCELED), Some(gate | 0x6));
        assert_eq!(reissue_after_cancel(gate | 0x7, tcr::SECANCELED), None);
        assert_eq!(reissue_after_cancel(gate | 0x2, tcr::RETIMEOUT), None);
    }

    #[test]
    fn a_relative_receive_timeout_loses_what_has_run() {
        use l4_sys::{Timeout, TimeoutPair};
        let sleep = TimeoutPair::new(Timeout::NEVER, Timeout::from_us(20_000)).raw();
        let left = TimeoutPair::from_raw(rest_of_receive_timeout(sleep, 5_000));
        let us = left.rcv.rel_us().unwrap();
        // the encoding (m · 2^e µs) rounds up: it never fires early
        assert!((15_000..=15_032).contains(&us), "{us}");
        let gone = TimeoutPair::from_raw(rest_of_receive_timeout(sleep, 25_000));
        assert_eq!(gone.rcv.rel_us(), Some(0));
        let never = TimeoutPair::new(Timeout::from_us(100), Timeout::NEVER).raw();
        let n = TimeoutPair::from_raw(rest_of_receive_timeout(never, 5_000));
        assert_eq!((n.snd, n.rcv), (Timeout::NEVER, Timeout::NEVER));
    }

    #[test]
    fn the_stub_is_the_entry_and_a_breakpoint() {
        for a in [Arch::Amd64, Arch::Arm64] {
            assert!(stub_code(a).starts_with(entry_instruction(a)));
            assert!(stub_code(a).len() > entry_instruction(a).len());
        }
    }
}

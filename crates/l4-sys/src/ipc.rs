//! IPC: send, call, receive, wait, reply, reply-and-wait, sleep — and the
//! kernel-object RPC helper every protocol module uses.
//!
//! Operation bits from `l4sys/include/consts.h` (`L4_syscall_flags_t`) and the
//! kernel's `src/abi/l4_types.cpp` (`L4_obj_ref::Operation`); the C functions
//! are in `l4sys/include/ipc.h`.

use crate::cap::{CapIdx, INVALID_CAP};
use crate::error::{check, Error};
use crate::kernel::{Invocation, Kernel, Outcome};
use crate::msgtag::{MsgTag, TagFlags};
use crate::timeout::TimeoutPair;

/// Operation bits in the destination word (`L4_SYSF_*`).
pub mod op {
    /// `L4_SYSF_SEND`.
    pub const SEND: u64 = 0x1;
    /// `L4_SYSF_RECV`.
    pub const RECV: u64 = 0x2;
    /// `L4_SYSF_OPEN_WAIT`.
    pub const OPEN_WAIT: u64 = 0x4;
    /// `L4_SYSF_REPLY`.
    pub const REPLY: u64 = 0x8;
    /// `L4_SYSF_CALL` = send + receive from the same object.
    pub const CALL: u64 = SEND | RECV;
    /// `L4_SYSF_WAIT` = open wait.
    pub const WAIT: u64 = OPEN_WAIT | RECV;
    /// `L4_SYSF_SEND_AND_WAIT`.
    pub const SEND_AND_WAIT: u64 = OPEN_WAIT | CALL;
    /// `L4_SYSF_REPLY_AND_WAIT`.
    pub const REPLY_AND_WAIT: u64 = REPLY | SEND_AND_WAIT;
}

/// A received message: its tag and the label the kernel delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Received {
    /// The tag of the received message.
    pub tag: MsgTag,
    /// The label: gate label | W/S bits of the sender's capability, an IRQ's
    /// bind label, or what a thread-cap sender chose.
    pub label: u64,
}

fn enter<K: Kernel>(k: &mut K, dest: u64, tag: MsgTag, label: u64, timeout: TimeoutPair) -> Result<Received, Error> {
    let Outcome { tag, label } = k.invoke(Invocation { dest, tag, label, timeout });
    if tag.has_error() {
        let tcr = k.utcb().tcr_error;
        return Err(Error::Ipc(crate::error::IpcError::from_tcr(tcr)));
    }
    Ok(Received { tag, label })
}

/// Send to `dest` (`l4_ipc_send`). The message is already in the MRs.
pub fn send<K: Kernel>(k: &mut K, dest: CapIdx, tag: MsgTag, timeout: TimeoutPair) -> Result<(), Error> {
    enter(k, dest.sel() | op::SEND, tag, 0, timeout).map(|_| ())
}

/// Send directly to a thread capability with a label of the sender's choice.
pub fn send_labelled<K: Kernel>(
    k: &mut K,
    dest: CapIdx,
    tag: MsgTag,
    label: u64,
    timeout: TimeoutPair,
) -> Result<(), Error> {
    enter(k, dest.sel() | op::SEND, tag, label, timeout).map(|_| ())
}

/// Call `dest` and wait for its reply (`l4_ipc_call`).
pub fn call<K: Kernel>(k: &mut K, dest: CapIdx, tag: MsgTag, timeout: TimeoutPair) -> Result<Received, Error> {
    enter(k, dest.sel() | op::CALL, tag, 0, timeout)
}

/// Closed receive from exactly `src` (`l4_ipc_receive`).
pub fn receive<K: Kernel>(k: &mut K, src: CapIdx, timeout: TimeoutPair) -> Result<Received, Error> {
    enter(k, src.sel() | op::RECV, MsgTag(0), 0, timeout)
}

/// Open wait: receive from anybody (`l4_ipc_wait`).
pub fn wait<K: Kernel>(k: &mut K, timeout: TimeoutPair) -> Result<Received, Error> {
    enter(k, INVALID_CAP | op::WAIT, MsgTag(0), 0, timeout)
}

/// Send to `dest`, then wait for anybody (`l4_ipc_send_and_wait`).
pub fn send_and_wait<K: Kernel>(k: &mut K, dest: CapIdx, tag: MsgTag, timeout: TimeoutPair) -> Result<Received, Error> {
    enter(k, dest.sel() | op::SEND_AND_WAIT, tag, 0, timeout)
}

/// Reply through the implicit reply capability (`l4_ipc_reply`); `label` is
/// what the caller receives as label.
pub fn reply<K: Kernel>(k: &mut K, tag: MsgTag, label: u64, timeout: TimeoutPair) -> Result<(), Error> {
    enter(k, INVALID_CAP | op::SEND | op::REPLY, tag, label, timeout).map(|_| ())
}

/// Reply, then open wait (`l4_ipc_reply_and_wait`) — the server loop's step.
pub fn reply_and_wait<K: Kernel>(k: &mut K, tag: MsgTag, label: u64, timeout: TimeoutPair) -> Result<Received, Error> {
    enter(k, INVALID_CAP | op::REPLY_AND_WAIT, tag, label, timeout)
}

/// Sleep: receive from oneself, which never arrives, with a receive timeout
/// (`l4_ipc_sleep`). Returns `Ok` when the timeout expired as intended.
pub fn sleep<K: Kernel>(k: &mut K, timeout: crate::Timeout) -> Result<(), Error> {
    match enter(k, INVALID_CAP | op::RECV, MsgTag(0), 0, TimeoutPair::new(crate::Timeout::NEVER, timeout)) {
        Err(e) if e.is_timeout() => Ok(()),
        Err(e) => Err(e),
        Ok(r) => Err(Error::MalformedReply { tag: r.tag }),
    }
}

/// Give up the rest of the time slice (`l4_thread_yield`): a receive from
/// oneself with both timeouts zero.
pub fn yield_now<K: Kernel>(k: &mut K) {
    let _ = enter(k, INVALID_CAP | op::RECV, MsgTag(0), 0, TimeoutPair::BOTH_ZERO);
}

/// A kernel-object RPC: writes `words` into MR0.., then each capability
/// argument as a typed item, calls `obj` and checks both error channels
/// (`l4_error(l4_ipc_call(...))`). Returns the reply's tag.
pub fn rpc<K: Kernel>(
    k: &mut K,
    obj: CapIdx,
    label: i64,
    words: &[u64],
    caps: &[crate::item::SendItem],
) -> Result<MsgTag, Error> {
    let tag = put_message(k, label, words, caps, TagFlags::empty())?;
    let r = call(k, obj, tag, TimeoutPair::NEVER)?;
    let tcr = k.utcb().tcr_error;
    check(r.tag, tcr)
}

/// A send-only kernel-object operation (no reply: log write, IRQ trigger,
/// ICU mask/unmask). Fails only on IPC errors.
pub fn oneway<K: Kernel>(
    k: &mut K,
    obj: CapIdx,
    label: i64,
    words: &[u64],
    flags: TagFlags,
    timeout: TimeoutPair,
) -> Result<(), Error> {
    let tag = put_message(k, label, words, &[], flags)?;
    send(k, obj, tag, timeout)
}

/// Writes an untyped part and typed items into the MRs and returns the tag.
pub fn put_message<K: Kernel>(
    k: &mut K,
    label: i64,
    words: &[u64],
    items: &[crate::item::SendItem],
    flags: TagFlags,
) -> Result<MsgTag, Error> {
    let n = words.len() + 2 * items.len();
    if n > crate::utcb::MR_COUNT {
        return Err(Error::RequestTooLarge);
    }
    let u = k.utcb();
    u.mr[..words.len()].copy_from_slice(words);
    for (i, it) in items.iter().enumerate() {
        let at = words.len() + 2 * i;
        u.mr[at..at + 2].copy_from_slice(&it.words());
    }
    Ok(MsgTag::new(label, words.len(), items.len(), flags))
}

/// Checks that a reply carries at least `words` untyped words and `items`
/// typed items, so that reading them reads what the object wrote.
pub fn expect(tag: MsgTag, words: usize, items: usize) -> Result<MsgTag, Error> {
    if tag.words() < words || tag.items() < items {
        Err(Error::MalformedReply { tag })
    } else {
        Ok(tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{IpcErrorCode, Phase};
    use crate::fake::FakeKernel;
    use crate::Timeout;

    #[test]
    fn op_combinations_match_consts_h() {
        assert_eq!(op::CALL, 3);
        assert_eq!(op::WAIT, 6);
        assert_eq!(op::SEND_AND_WAIT, 7);
        assert_eq!(op::REPLY_AND_WAIT, 0xF);
        assert_eq!(op::REPLY | op::SEND, 9);
    }

    #[test]
    fn call_encodes_registers() {
        let mut k = FakeKernel::new();
        k.utcb().mr[0] = 42;
        let tag = MsgTag::new(7, 1, 0, TagFlags::empty());
        call(&mut k, CapIdx(9), tag, TimeoutPair::NEVER).unwrap();
        let e = &k.log[0];
        assert_eq!(e.inv.dest, 0x9003);
        assert_eq!(e.inv.tag, tag);
        assert_eq!(e.mrs(), &[42]);
    }

    #[test]
    fn reply_and_wait_uses_the_implicit_reply_cap() {
        let mut k = FakeKernel::new();
        reply_and_wait(&mut k, MsgTag(0), 0x55, TimeoutPair::NEVER).unwrap();
        assert_eq!(k.log[0].inv.dest, 0xFFFF_FFFF_FFFF_F80F);
        assert_eq!(k.log[0].inv.label, 0x55);
        wait(&mut k, TimeoutPair::RECV_ZERO).unwrap();
        assert_eq!(k.log[1].inv.dest, 0xFFFF_FFFF_FFFF_F806);
        assert_eq!(k.log[1].inv.timeout.raw(), 0x400);
    }

    #[test]
    fn ipc_errors_come_from_the_tcr() {
        let mut k = FakeKernel::new();
        k.answer_ipc_error(0x03);
        let e = receive(&mut k, CapIdx(5), TimeoutPair::NEVER).unwrap_err();
        assert_eq!(e, Error::Ipc(crate::IpcError { code: IpcErrorCode::Timeout, phase: Phase::Receive }));
    }

    #[test]
    fn sleep_treats_the_timeout_as_success() {
        let mut k = FakeKernel::new();
        k.answer_ipc_error(0x03);
        assert_eq!(sleep(&mut k, Timeout::from_us(1000)), Ok(()));
        let inv = k.log[0].inv;
        assert_eq!(inv.dest, INVALID_CAP | op::RECV);
        assert_eq!(inv.timeout.snd, Timeout::NEVER);
        assert_eq!(inv.timeout.rcv.rel_us(), Some(1000));
        // anything else than a timeout is an error
        k.answer_ipc_error(0x07);
        assert!(sleep(&mut k, Timeout::from_us(1)).is_err());
    }

    #[test]
    fn rpc_reports_negative_labels() {
        let mut k = FakeKernel::new();
        k.answer(MsgTag::new(-1, 0, 0, TagFlags::empty()), 0, &[]);
        assert_eq!(rpc(&mut k, CapIdx(2), -15, &[1], &[]), Err(Error::Kernel(crate::Errno::Perm)));
    }

    #[test]
    fn oversized_messages_are_refused_before_entering() {
        let mut k = FakeKernel::new();
        let words = [0u64; 62];
        let it = [crate::item::SendItem::cap_arg(CapIdx(1))];
        assert_eq!(rpc(&mut k, CapIdx(2), 0, &words, &it), Err(Error::RequestTooLarge));
        assert!(k.log.is_empty());
    }

    #[test]
    fn expect_checks_shape() {
        assert!(expect(MsgTag::new(0, 2, 1, TagFlags::empty()), 2, 1).is_ok());
        assert!(expect(MsgTag::new(0, 1, 1, TagFlags::empty()), 2, 1).is_err());
        assert!(expect(MsgTag::new(0, 2, 0, TagFlags::empty()), 2, 1).is_err());
    }
}

//! The IRQ fast path: a second rtcr thread that serves the child's IRQ
//! proxies, so that a trigger never finds nobody to receive it.
//!
//! `l4_irq_trigger` is a send with a zero timeout: on the kernel it cannot
//! fail, but sent to a proxy gate it fails whenever the gate's thread is not
//! in its receive at that instant. On one CPU rtcr's main thread always is
//! when a child thread runs (rtcr outranks the child); on several it is
//! often not (it serves another request, copies pages after a checkpoint,
//! writes the image), and on QEMU x86_64 with four CPUs about one trigger
//! in five failed. So the proxy gates are bound to this thread instead
//! ([`crate::ChildSpec::fast_path`]): it runs above rtcr's main thread on
//! the same CPU, does the operations that need no record itself (trigger,
//! unmask: the real IRQ's slot is in the gate's label,
//! [`crate::labels::irq_proxy_label`]) and goes straight back to its
//! receive; whatever else comes (bind, detach, anything unknown) it hands
//! to the main thread through the [`crate::labels::FORWARD`] gate, as the
//! words it got (tag, label, message registers), and passes the answer on.
//! Since it outranks the main thread on the main thread's CPU, the main
//! thread never sees it half-way through a trigger (a cut's IRQ sampling
//! stays exact).

use l4_sys::cap::{kind, Cap, CapIdx};
use l4_sys::msgtag::{MsgTag, Protocol};
use l4_sys::{ipc, irq, Error, Kernel, TimeoutPair};

use crate::labels::{self, Service};
use crate::state::NO_DONATION;

/// `L4_IRQ_OP_EOI`: unmask.
const EOI: u64 = 4;

/// Serves the IRQ proxies for ever: the fast path thread's body.
/// `forward`: rtcr's slot of the gate to the main thread; `scratch`: a
/// slot of rtcr's for the receive buffer (a bind's thread capability comes
/// as the label of rtcr's own gate, LOCAL_ID: nothing lands there).
pub fn serve<K: Kernel>(k: &mut K, forward: CapIdx, scratch: CapIdx) -> ! {
    let mut got = wait(k, scratch);
    loop {
        if let Ok(r) = got {
            handle(k, forward, r.tag, r.label);
        }
        got = wait(k, scratch);
    }
}

/// The fast path's receive, with its buffer for one LOCAL_ID capability.
fn wait<K: Kernel>(k: &mut K, scratch: CapIdx) -> Result<ipc::Received, Error> {
    let u = k.utcb();
    u.bdr = 0;
    u.br[0] = l4_sys::item::rcv_single_cap_local_id(scratch);
    ipc::wait(k, TimeoutPair::NEVER)
}

/// What the fast path did with one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Done {
    /// Triggered the real IRQ.
    Triggered(CapIdx),
    /// Unmasked the real IRQ.
    Unmasked(CapIdx),
    /// Handed it to the main thread and passed the answer on.
    Forwarded,
    /// Not an IRQ proxy's: answered `-EINVAL`.
    Refused,
}

/// Handles the message just received (`tag`, `label`, the rest in the
/// UTCB); says what it did.
pub fn handle<K: Kernel>(k: &mut K, forward: CapIdx, tag: MsgTag, label: u64) -> Done {
    if !matches!(labels::decode(label), Some((Service::Irq, _))) {
        let _ = ipc::reply(k, MsgTag::new(-l4_sys::Errno::Inval.value(), 0, 0, NO_DONATION), 0, TimeoutPair::SEND_ZERO);
        return Done::Refused;
    }
    let real: Cap<kind::Irq> = Cap::new(labels::irq_proxy_real(label));
    if tag.label() == Protocol::Irq.label() {
        if tag.words() == 0 {
            // a send: nothing to answer (the kernel's own trigger fails
            // only for an IRQ that is gone)
            let _ = irq::trigger(k, real);
            return Done::Triggered(real.idx());
        }
        if k.utcb().mr[0] == EOI {
            let _ = irq::unmask(k, real);
            return Done::Unmasked(real.idx());
        }
    }
    // the rest to the main thread: the tag and label, then the message
    // registers as they came (words, then items as the kernel wrote them)
    let n = (tag.words() + 2 * tag.items()).min(61);
    let u = k.utcb();
    u.mr.copy_within(0..n, 2);
    u.mr[0] = tag.0;
    u.mr[1] = label;
    match ipc::call(k, forward, MsgTag::new(0, n + 2, 0, NO_DONATION), TimeoutPair::NEVER) {
        Ok(r) => {
            let answer = MsgTag::new(r.tag.label(), r.tag.words(), 0, NO_DONATION);
            let _ = ipc::reply(k, answer, 0, TimeoutPair::SEND_ZERO);
        }
        Err(_) => {
            let _ =
                ipc::reply(k, MsgTag::new(-l4_sys::Errno::Io.value(), 0, 0, NO_DONATION), 0, TimeoutPair::SEND_ZERO);
        }
    }
    Done::Forwarded
}

#[cfg(test)]
mod tests {
    use super::*;
    use l4_sys::fake::FakeKernel;

    const FWD: CapIdx = CapIdx(0x30);
    const REAL: CapIdx = CapIdx(0x123);

    fn proxy() -> u64 {
        labels::irq_proxy_label(5, REAL) | 2
    }

    #[test]
    fn a_trigger_goes_to_the_real_irq_at_once() {
        let mut k = FakeKernel::new();
        let tag = MsgTag::proto(Protocol::Irq, 0, 0);
        assert_eq!(handle(&mut k, FWD, tag, proxy()), Done::Triggered(REAL));
        let e = k.last();
        assert_eq!(e.inv.dest >> 12, REAL.0, "sent to the real IRQ");
        assert_eq!(MsgTag(e.inv.tag.0).label(), Protocol::Irq.label());
        assert_eq!(k.log.len(), 1, "one kernel call, no reply, no forward");
    }

    #[test]
    fn an_unmask_too() {
        let mut k = FakeKernel::new();
        k.utcb().mr[0] = EOI;
        let tag = MsgTag::proto(Protocol::Irq, 1, 0);
        assert_eq!(handle(&mut k, FWD, tag, proxy()), Done::Unmasked(REAL));
        assert_eq!(k.last().inv.dest >> 12, REAL.0);
        assert_eq!(k.last().mrs(), &[EOI]);
    }

    #[test]
    fn a_bind_goes_to_the_main_thread_whole_and_its_answer_back() {
        let mut k = FakeKernel::new();
        // l4_rcv_ep_bind_thread: Kobject protocol, op 0x10, the label, one item
        let tag = MsgTag::new(Protocol::Kobject.label(), 2, 1, Default::default());
        k.utcb().mr[..4].copy_from_slice(&[0x10, 0x1020, 0x8_0000_000b, 0x331]);
        // main's answer: 0, no words
        k.answer(MsgTag::new(0, 0, 0, Default::default()), 0, &[]);
        assert_eq!(handle(&mut k, FWD, tag, proxy()), Done::Forwarded);
        let calls = &k.log;
        assert_eq!(calls.len(), 2, "{calls:?}");
        assert_eq!(calls[0].inv.dest >> 12, FWD.0);
        assert_eq!(calls[0].mrs(), &[tag.0, proxy(), 0x10, 0x1020, 0x8_0000_000b, 0x331]);
        // the reply to the child carries main's label
        assert_eq!(MsgTag(calls[1].inv.tag.0).label(), 0);
    }

    #[test]
    fn a_message_on_anything_else_is_refused() {
        let mut k = FakeKernel::new();
        let tag = MsgTag::proto(Protocol::Irq, 0, 0);
        assert_eq!(handle(&mut k, FWD, tag, labels::label(Service::Log, 0)), Done::Refused);
        assert_eq!(MsgTag(k.last().inv.tag.0).label(), -l4_sys::Errno::Inval.value());
    }
}

//! IRQ protocol (kernel `Irq_sender`): bind (see [`crate::rcv_endpoint`]),
//! detach, trigger, unmask, receive.
//!
//! From `l4sys/include/irq.h` (`l4_irq_detach`, `l4_irq_trigger`,
//! `l4_irq_unmask`, `l4_irq_receive`, `l4_irq_wait`) and the kernel's
//! `src/kern/irq.cpp`. Trigger and unmask are send-only; the delivered
//! message has tag 0 and the bind label as its label. The old `l4_irq_attach`
//! (label −18, op 0) is gone from current kernels: bind instead.

use crate::cap::{kind, Cap};
use crate::error::Error;
use crate::ipc::{self, rpc, Received};
use crate::kernel::Kernel;
use crate::msgtag::{MsgTag, Protocol, TagFlags};
use crate::timeout::TimeoutPair;

pub use crate::rcv_endpoint::bind_thread;

/// IRQ-sender opcodes (`L4_irq_sender_op`) under label −18.
pub mod opcode {
    /// `L4_IRQ_SENDER_OP_DETACH`.
    pub const DETACH: u64 = 1;
    /// `L4_IRQ_SENDER_OP_BIND_VCPU`.
    pub const BIND_VCPU: u64 = 2;
    /// `L4_IRQ_OP_EOI` (unmask) under label −1.
    pub const EOI: u64 = 4;
}

/// What detach found (`l4_irq_detach` result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetachResult {
    /// Nothing was pending (0).
    Idle,
    /// An IRQ was pending and is dropped (1).
    WasPending,
    /// An active vIRQ was abandoned (2), or another positive value.
    Other(i64),
}

/// Detaches the IRQ from its thread (`l4_irq_detach`); needs S.
pub fn detach<K: Kernel>(k: &mut K, irq: Cap<kind::Irq>) -> Result<DetachResult, Error> {
    let tag = rpc(k, irq.idx(), Protocol::IrqSender.label(), &[opcode::DETACH], &[])?;
    Ok(match tag.label() {
        0 => DetachResult::Idle,
        1 => DetachResult::WasPending,
        n => DetachResult::Other(n),
    })
}

/// Triggers a software IRQ (`l4_irq_trigger`): a send with zero words and both
/// timeouts zero.
pub fn trigger<K: Kernel>(k: &mut K, irq: Cap<kind::Irq>) -> Result<(), Error> {
    ipc::send(k, irq.idx(), MsgTag::proto(Protocol::Irq, 0, 0), TimeoutPair::BOTH_ZERO)
}

/// Unmasks (EOI) a hardware IRQ (`l4_irq_unmask`); send-only.
pub fn unmask<K: Kernel>(k: &mut K, irq: Cap<kind::Irq>) -> Result<(), Error> {
    ipc::oneway(k, irq.idx(), Protocol::Irq.label(), &[opcode::EOI], TagFlags::empty(), TimeoutPair::NEVER)
}

/// Unmasks and waits for this IRQ (`l4_irq_receive`).
pub fn receive<K: Kernel>(k: &mut K, irq: Cap<kind::Irq>, timeout: TimeoutPair) -> Result<Received, Error> {
    k.utcb().mr[0] = opcode::EOI;
    ipc::call(k, irq.idx(), MsgTag::proto(Protocol::Irq, 1, 0), timeout)
}

/// Unmasks and waits for any message (`l4_irq_wait`).
pub fn wait<K: Kernel>(k: &mut K, irq: Cap<kind::Irq>, timeout: TimeoutPair) -> Result<Received, Error> {
    k.utcb().mr[0] = opcode::EOI;
    ipc::send_and_wait(k, irq.idx(), MsgTag::proto(Protocol::Irq, 1, 0), timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::CapIdx;
    use crate::fake::FakeKernel;
    use crate::ipc::op;

    const IRQ: Cap<kind::Irq> = Cap::new(CapIdx(0x40));

    #[test]
    fn trigger_is_a_zero_word_send_with_zero_timeouts() {
        let mut k = FakeKernel::new();
        trigger(&mut k, IRQ).unwrap();
        let inv = k.last().inv;
        assert_eq!(inv.dest, 0x40000 | op::SEND);
        assert_eq!(inv.tag.0, (-1i64 as u64) << 16);
        assert_eq!(inv.timeout, TimeoutPair::BOTH_ZERO);
    }

    #[test]
    fn unmask_receive_wait() {
        let mut k = FakeKernel::new();
        unmask(&mut k, IRQ).unwrap();
        assert_eq!(k.last().inv.dest & 0xf, op::SEND);
        assert_eq!(k.last().mrs(), &[4]);
        assert_eq!(k.last().inv.tag.label(), -1);
        receive(&mut k, IRQ, TimeoutPair::NEVER).unwrap();
        assert_eq!(k.last().inv.dest & 0xf, op::CALL);
        assert_eq!(k.last().mrs(), &[4]);
        wait(&mut k, IRQ, TimeoutPair::NEVER).unwrap();
        assert_eq!(k.last().inv.dest & 0xf, op::SEND_AND_WAIT);
    }

    #[test]
    fn detach_results() {
        let mut k = FakeKernel::new();
        k.answer(MsgTag::new(1, 0, 0, Default::default()), 0, &[]);
        assert_eq!(detach(&mut k, IRQ), Ok(DetachResult::WasPending));
        assert_eq!(k.last().mrs(), &[1]);
        assert_eq!(k.last().inv.tag.label(), -18);
        assert_eq!(detach(&mut k, IRQ), Ok(DetachResult::Idle));
    }
}

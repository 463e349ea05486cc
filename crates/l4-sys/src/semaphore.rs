//! Semaphore protocol (label −20): down; up is an IRQ-style trigger.
//!
//! From `l4sys/include/semaphore.h` (`l4_semaphore_down`, `l4_semaphore_up`)
//! and the kernel's `src/kern/semaphore.cpp`.

use crate::cap::{kind, Cap};
use crate::error::Error;
use crate::ipc;
use crate::kernel::Kernel;
use crate::msgtag::{MsgTag, Protocol};
use crate::timeout::TimeoutPair;

/// `L4_SEMAPHORE_OP_DOWN`.
pub const DOWN_OP: u64 = 0;

/// Decrements, blocking up to the receive timeout (`l4_semaphore_down`).
pub fn down<K: Kernel>(k: &mut K, sem: Cap<kind::Semaphore>, timeout: TimeoutPair) -> Result<(), Error> {
    k.utcb().mr[0] = DOWN_OP;
    let r = ipc::call(k, sem.idx(), MsgTag::proto(Protocol::Semaphore, 1, 0), timeout)?;
    let tcr = k.utcb().tcr_error;
    crate::error::check(r.tag, tcr).map(|_| ())
}

/// Increments (`l4_semaphore_up`): the same message as an IRQ trigger.
pub fn up<K: Kernel>(k: &mut K, sem: Cap<kind::Semaphore>) -> Result<(), Error> {
    ipc::send(k, sem.idx(), MsgTag::proto(Protocol::Irq, 0, 0), TimeoutPair::BOTH_ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::CapIdx;
    use crate::fake::FakeKernel;

    #[test]
    fn down_and_up() {
        let mut k = FakeKernel::new();
        down(&mut k, Cap::new(CapIdx(8)), TimeoutPair::NEVER).unwrap();
        assert_eq!(k.last().inv.tag.label(), -20);
        assert_eq!(k.last().mrs(), &[0]);
        up(&mut k, Cap::new(CapIdx(8))).unwrap();
        assert_eq!(k.last().inv.tag.0, (-1i64 as u64) << 16);
        k.answer_ipc_error(0x03);
        assert!(down(&mut k, Cap::new(CapIdx(8)), TimeoutPair::RECV_ZERO).unwrap_err().is_timeout());
    }
}

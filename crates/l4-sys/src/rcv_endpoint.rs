//! Receive endpoints: the bind operation IPC gates and IRQs share.
//!
//! From `l4sys/include/rcv_endpoint.h` (`l4_rcv_ep_bind_thread`) and the
//! kernel's `src/kern/ipc_gate.cpp` / `src/kern/irq.cpp` (`Rcv_endpoint`
//! op 0x10 under label −10). Binding replaces thread and label atomically.
//! Gate labels must have bits 0–1 clear (the kernel answers −EINVAL); IRQ
//! labels may be any value.

use crate::cap::{kind, Cap};
use crate::error::Error;
use crate::ipc::rpc;
use crate::item::SendItem;
use crate::kernel::Kernel;
use crate::msgtag::Protocol;

/// `L4_RCV_EP_BIND_OP`.
pub const BIND_OP: u64 = 0x10;

/// Kinds that are receive endpoints.
pub trait RcvEndpoint {}
impl RcvEndpoint for kind::IpcGate {}
impl RcvEndpoint for kind::Irq {}

/// Binds `ep` to `thread` with `label` (`l4_rcv_ep_bind_thread`). Needs the S
/// right on both capabilities.
pub fn bind_thread<K: Kernel, T: RcvEndpoint>(
    k: &mut K,
    ep: Cap<T>,
    thread: Cap<kind::Thread>,
    label: u64,
) -> Result<(), Error> {
    rpc(k, ep.idx(), Protocol::Kobject.label(), &[BIND_OP, label], &[SendItem::cap_arg(thread.idx())]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::CapIdx;
    use crate::fake::FakeKernel;

    #[test]
    fn bind_words_are_the_same_for_gates_and_irqs() {
        let mut k = FakeKernel::new();
        let th: Cap<kind::Thread> = Cap::new(CapIdx(3));
        bind_thread(&mut k, Cap::<kind::IpcGate>::new(CapIdx(9)), th, 0x120).unwrap();
        bind_thread(&mut k, Cap::<kind::Irq>::new(CapIdx(9)), th, 0x120).unwrap();
        let (a, b) = (&k.log[0], &k.log[1]);
        assert_eq!(a.mrs(), b.mrs());
        assert_eq!(a.inv, b.inv);
        // fact sheet §4.4: label -10, words 2, items 1, MR0 = 0x10, MR1 = label
        assert_eq!(a.inv.tag.label(), -10);
        assert_eq!((a.inv.tag.words(), a.inv.tag.items()), (2, 1));
        assert_eq!(a.mrs(), &[0x10, 0x120, 8, 0x3037]);
        assert_eq!(a.inv.dest, 0x9003);
    }
}

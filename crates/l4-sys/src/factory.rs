//! Factory protocol (label −15): create tasks, threads, IPC gates, IRQs,
//! semaphores and child factories.
//!
//! From `l4sys/include/factory.h` (`l4_factory_create_*`) and the kernel's
//! `src/kern/factory.cpp` (`Factory::kinvoke`, `map_obj`), with the object
//! ids of each kind from `ipc_gate.cpp`, `thread_object.cpp`, `task.cpp`,
//! `irq.cpp`, `semaphore.cpp`. The new object's capability arrives in the
//! single-cap receive buffer BR0 = `target << 12 | 0xA` (BDR = 0). The
//! factory capability needs the S right; the operation must be a call.

use crate::cap::{kind, Cap, CapIdx};
use crate::error::Error;
use crate::fpage::Fpage;
use crate::ipc::rpc;
use crate::item::{rcv_single_cap, SendItem};
use crate::kernel::Kernel;
use crate::msgtag::Protocol;

/// Vararg type headers (`L4_varg_type` | size << 16).
pub mod varg {
    /// Unsigned machine word (`L4_VARG_TYPE_UMWORD`, 8 bytes).
    pub const UMWORD: u64 = 0x0008_0001;
    /// Signed machine word (`L4_VARG_TYPE_MWORD`).
    pub const MWORD: u64 = 0x0008_0081;
    /// Flexpage (`L4_VARG_TYPE_FPAGE`).
    pub const FPAGE: u64 = 0x0008_0003;
}

fn create<K: Kernel>(
    k: &mut K,
    factory: Cap<kind::Factory>,
    target: CapIdx,
    words: &[u64],
    caps: &[SendItem],
) -> Result<crate::MsgTag, Error> {
    let u = k.utcb();
    u.bdr = 0;
    u.br[0] = rcv_single_cap(target);
    rpc(k, factory.idx(), Protocol::Factory.label(), words, caps)
}

/// Creates a task whose UTCB area is `utcb_area` (`l4_factory_create_task`;
/// use [`Fpage::INVALID`] for none). The new task's capability lands at `target`.
pub fn create_task<K: Kernel>(
    k: &mut K,
    factory: Cap<kind::Factory>,
    target: CapIdx,
    utcb_area: Fpage,
) -> Result<Cap<kind::Task>, Error> {
    create(k, factory, target, &[Protocol::Task.label() as u64, varg::FPAGE, utcb_area.0], &[])?;
    Ok(Cap::new(target))
}

/// Creates a thread (`l4_factory_create_thread`). It is unbound and does not
/// run before the scheduler's `run_thread`.
pub fn create_thread<K: Kernel>(
    k: &mut K,
    factory: Cap<kind::Factory>,
    target: CapIdx,
) -> Result<Cap<kind::Thread>, Error> {
    create(k, factory, target, &[Protocol::Thread.label() as u64], &[])?;
    Ok(Cap::new(target))
}

/// Creates an IPC gate (`l4_factory_create_gate`). With `bind = Some((thread,
/// label))` it is bound to `thread` with `label` (bits 0–1 must be clear);
/// without, it is unbound with label 0 (the kernel ignores the label then).
pub fn create_gate<K: Kernel>(
    k: &mut K,
    factory: Cap<kind::Factory>,
    target: CapIdx,
    bind: Option<(Cap<kind::Thread>, u64)>,
) -> Result<Cap<kind::IpcGate>, Error> {
    match bind {
        Some((thread, label)) => {
            create(k, factory, target, &[0, varg::UMWORD, label], &[SendItem::cap_arg(thread.idx())])?
        }
        None => create(k, factory, target, &[0, varg::UMWORD, 0], &[])?,
    };
    Ok(Cap::new(target))
}

/// Creates an IRQ object (`l4_factory_create_irq`).
pub fn create_irq<K: Kernel>(k: &mut K, factory: Cap<kind::Factory>, target: CapIdx) -> Result<Cap<kind::Irq>, Error> {
    create(k, factory, target, &[Protocol::IrqSender.label() as u64], &[])?;
    Ok(Cap::new(target))
}

/// Creates a semaphore (`l4_factory_create_semaphore`).
pub fn create_semaphore<K: Kernel>(
    k: &mut K,
    factory: Cap<kind::Factory>,
    target: CapIdx,
) -> Result<Cap<kind::Semaphore>, Error> {
    create(k, factory, target, &[Protocol::Semaphore.label() as u64], &[])?;
    Ok(Cap::new(target))
}

/// Creates a child factory with a memory quota of `limit` bytes
/// (`l4_factory_create_factory`).
pub fn create_factory<K: Kernel>(
    k: &mut K,
    factory: Cap<kind::Factory>,
    target: CapIdx,
    limit: u64,
) -> Result<Cap<kind::Factory>, Error> {
    create(k, factory, target, &[Protocol::Factory.label() as u64, varg::UMWORD, limit], &[])?;
    Ok(Cap::new(target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeKernel;
    use crate::fpage::{CapRights, MemRights};

    const F: Cap<kind::Factory> = Cap::new(CapIdx(2));

    #[test]
    fn create_task_words() {
        let mut k = FakeKernel::new();
        let area = Fpage::mem(0xB300_0000, 12, MemRights::empty());
        let t = create_task(&mut k, F, CapIdx(0x20), area).unwrap();
        assert_eq!(t.idx(), CapIdx(0x20));
        let e = k.last();
        // fact sheet §4.1 / §6 step 1: tag -15/3/0, MR0 = -11, MR1 = 0x0008_0003
        assert_eq!(e.inv.tag.0, 0xFFFF_FFFF_FFF1_0003);
        assert_eq!(e.inv.dest, 0x2003);
        assert_eq!(e.words(), &[(-11i64) as u64, 0x0008_0003, 0xB300_0000 | (12 << 6) | 0x10]);
        assert_eq!(e.utcb.bdr, 0);
        assert_eq!(e.utcb.br[0], 0x2000A);
    }

    #[test]
    fn create_thread_irq_semaphore_factory_words() {
        let mut k = FakeKernel::new();
        create_thread(&mut k, F, CapIdx(0x21)).unwrap();
        assert_eq!(k.last().words(), &[(-12i64) as u64]);
        assert_eq!(k.last().inv.tag.0, 0xFFFF_FFFF_FFF1_0001);
        create_irq(&mut k, F, CapIdx(0x22)).unwrap();
        assert_eq!(k.last().words(), &[(-18i64) as u64]);
        assert_eq!(k.last().utcb.br[0], 0x2200A);
        create_semaphore(&mut k, F, CapIdx(0x23)).unwrap();
        assert_eq!(k.last().words(), &[(-20i64) as u64]);
        create_factory(&mut k, F, CapIdx(0x24), 1 << 20).unwrap();
        assert_eq!(k.last().words(), &[(-15i64) as u64, 0x0008_0001, 1 << 20]);
    }

    #[test]
    fn create_gate_with_and_without_thread() {
        let mut k = FakeKernel::new();
        let th: Cap<kind::Thread> = Cap::new(CapIdx(3));
        create_gate(&mut k, F, CapIdx(0x30), Some((th, 0x40))).unwrap();
        let e = k.last();
        // fact sheet §4.1: MR0 = 0, MR1 = umword header, MR2 = label, item thread
        assert_eq!(e.inv.tag.0, 0xFFFF_FFFF_FFF1_0043);
        assert_eq!(e.words(), &[0, 0x0008_0001, 0x40]);
        assert_eq!(e.items(), &[8, Fpage::obj(CapIdx(3), 0, CapRights::RWS).0]);
        create_gate(&mut k, F, CapIdx(0x31), None).unwrap();
        assert_eq!(k.last().inv.tag.items(), 0);
    }

    #[test]
    fn kernel_refusal_is_reported() {
        let mut k = FakeKernel::new();
        k.answer(crate::MsgTag::new(-12, 0, 0, Default::default()), 0, &[]);
        assert_eq!(create_thread(&mut k, F, CapIdx(0x21)), Err(Error::Kernel(crate::Errno::NoMem)));
        k.answer_ipc_error(0x09);
        assert!(matches!(create_irq(&mut k, F, CapIdx(0x22)), Err(Error::Ipc(_))));
    }
}

//! Capability indices, selectors and typed capabilities.
//!
//! A capability is named by its index in the caller's object space; the kernel
//! takes it shifted left by 12 (a "selector", `L4_CAP_SHIFT`), with the low
//! bits free for operation flags. Constants from `l4sys/include/consts.h`
//! (`L4_cap_consts`, `l4_default_caps_t`) and `l4sys/include/types.h`.
//!
//! [`Cap<T>`] carries the kind of object in its type, in the way rust-sel4
//! does, so that a thread operation cannot be sent to an IRQ by mistake. The
//! type is a promise made by whoever built the `Cap`; the kernel still checks.

use core::marker::PhantomData;

/// `L4_CAP_SHIFT`: selector = index << 12.
pub const CAP_SHIFT: u32 = 12;
/// `L4_INVALID_CAP_BIT`.
pub const INVALID_CAP_BIT: u64 = 0x800;
/// `L4_REPLY_CAP_BIT`: index refers to the explicit reply-cap space.
pub const REPLY_CAP_BIT: u64 = 0x400;
/// `L4_INVALID_CAP` (`~0 << 11`): invalid; as an IPC destination it means
/// "self", and for reply it names the implicit reply capability.
pub const INVALID_CAP: u64 = !0u64 << 11;
/// `L4_INVALID_REPLY_CAP` (`~0 << 10`).
pub const INVALID_REPLY_CAP: u64 = !0u64 << 10;

/// An index in an object space (a "cap slot").
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[repr(transparent)]
pub struct CapIdx(pub u64);

impl CapIdx {
    /// The selector (`index << 12`), as the kernel takes it.
    pub const fn sel(self) -> u64 {
        self.0 << CAP_SHIFT
    }

    /// The index a selector names (flag bits dropped).
    pub const fn from_sel(sel: u64) -> Self {
        CapIdx(sel >> CAP_SHIFT)
    }
}

/// Initial capabilities of the root task and sigma0 (`l4_default_caps_t`),
/// created by the kernel (`src/kern/std_workload.cpp`, `Initial_kobjects` in
/// `src/kern/globals.cpp`). rtcr gives its children the same layout.
pub mod base {
    use super::CapIdx;
    /// `L4_BASE_TASK_CAP`: the own task.
    pub const TASK: CapIdx = CapIdx(1);
    /// `L4_BASE_FACTORY_CAP`: the factory.
    pub const FACTORY: CapIdx = CapIdx(2);
    /// `L4_BASE_THREAD_CAP`: the own first thread.
    pub const THREAD: CapIdx = CapIdx(3);
    /// `L4_BASE_PAGER_CAP`: the pager (for the root task: a gate to sigma0).
    pub const PAGER: CapIdx = CapIdx(4);
    /// `L4_BASE_LOG_CAP`: the kernel log (only with kernel output configured).
    pub const LOG: CapIdx = CapIdx(5);
    /// `L4_BASE_ICU_CAP`: the platform interrupt controller.
    pub const ICU: CapIdx = CapIdx(6);
    /// `L4_BASE_SCHEDULER_CAP`: the scheduler.
    pub const SCHEDULER: CapIdx = CapIdx(7);
    /// `L4_BASE_IOMMU_CAP`: only where an IOMMU was detected.
    pub const IOMMU: CapIdx = CapIdx(8);
    /// `L4_BASE_DEBUGGER_CAP`: the JDB object (kernels with `CONFIG_RT_DBG`).
    pub const DEBUGGER: CapIdx = CapIdx(10);
    /// `L4_BASE_ARM_SMCCC_CAP`: Arm SMC interface, only with a TEE.
    pub const ARM_SMCCC: CapIdx = CapIdx(11);
}

/// Kinds of kernel objects, as marker types for [`Cap<T>`].
pub mod kind {
    macro_rules! kinds {
        ($($(#[$m:meta])* $name:ident),* $(,)?) => {
            $( $(#[$m])* #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)] pub enum $name {} )*
        };
    }
    kinds! {
        /// An address space and object space (`L4::Task`).
        Task,
        /// A thread (`L4::Thread`).
        Thread,
        /// A factory (`L4::Factory`).
        Factory,
        /// An IPC gate (`L4::Ipc_gate`).
        IpcGate,
        /// An IRQ object (`L4::Irq`, kernel `Irq_sender`).
        Irq,
        /// A semaphore (`L4::Semaphore`).
        Semaphore,
        /// An interrupt controller (`L4::Icu`).
        Icu,
        /// The scheduler (`L4::Scheduler`).
        Scheduler,
        /// The kernel log (`L4::Vcon`).
        Log,
        /// The kernel debugger (`L4::Debugger`).
        Debugger,
        /// sigma0, reached through the root task's pager gate.
        Sigma0,
        /// Anything: used where the kind is not known.
        Untyped,
    }
}

/// A capability to an object of kind `T`, by its index in the caller's space.
pub struct Cap<T> {
    idx: CapIdx,
    _kind: PhantomData<fn() -> T>,
}

impl<T> Cap<T> {
    /// Names the capability at `idx` as a `T`.
    pub const fn new(idx: CapIdx) -> Self {
        Cap { idx, _kind: PhantomData }
    }

    /// Index in the caller's object space.
    pub const fn idx(self) -> CapIdx {
        self.idx
    }

    /// Selector (`index << 12`).
    pub const fn sel(self) -> u64 {
        self.idx.sel()
    }

    /// The same slot, named as another kind (for generic operations such as
    /// naming an object in the debugger, or mapping it).
    pub const fn cast<U>(self) -> Cap<U> {
        Cap::new(self.idx)
    }

    /// The same slot with its kind forgotten.
    pub const fn untyped(self) -> Cap<kind::Untyped> {
        self.cast()
    }
}

impl<T> Clone for Cap<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Cap<T> {}
impl<T> PartialEq for Cap<T> {
    fn eq(&self, o: &Self) -> bool {
        self.idx == o.idx
    }
}
impl<T> Eq for Cap<T> {}
impl<T> core::fmt::Debug for Cap<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let full = core::any::type_name::<T>();
        let short = full.rsplit("::").next().unwrap_or(full);
        write!(f, "Cap<{}>({})", short, self.idx.0)
    }
}

/// Is `sel` the invalid capability (`l4_is_invalid_cap`)?
pub const fn is_invalid(sel: u64) -> bool {
    sel & INVALID_CAP_BIT != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_follow_cap_shift() {
        assert_eq!(CapIdx(4).sel(), 0x4000);
        assert_eq!(CapIdx::from_sel(0x7000 | 0x3), CapIdx(7));
        assert_eq!(base::SCHEDULER.sel(), 0x7000);
        assert_eq!(base::DEBUGGER.sel(), 0xA000);
    }

    #[test]
    fn invalid_and_reply_constants() {
        assert_eq!(INVALID_CAP, 0xFFFF_FFFF_FFFF_F800);
        assert_eq!(INVALID_REPLY_CAP, 0xFFFF_FFFF_FFFF_FC00);
        assert!(is_invalid(INVALID_CAP));
        assert!(!is_invalid(CapIdx(1).sel()));
    }

    #[test]
    fn typed_caps_keep_the_slot() {
        let t: Cap<kind::Thread> = Cap::new(CapIdx(3));
        let u = t.untyped();
        assert_eq!(u.idx(), CapIdx(3));
        assert_eq!(format!("{t:?}"), "Cap<Thread>(3)");
    }
}

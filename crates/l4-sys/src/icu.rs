//! ICU protocol (label −1): bind hardware IRQ lines to IRQ objects, unbind,
//! info, MSI info, mask/unmask, trigger mode.
//!
//! From `l4sys/include/icu.h` (`l4_icu_bind`, `l4_icu_unbind`, `l4_icu_info`,
//! `l4_icu_msi_info`, `l4_icu_unmask`, `l4_icu_mask`, `l4_icu_set_mode`) and
//! the kernel's `src/kern/icu_helper.cpp`.

use crate::cap::{kind, Cap};
use crate::error::Error;
use crate::ipc::{self, expect, rpc};
use crate::item::SendItem;
use crate::kernel::Kernel;
use crate::msgtag::{Protocol, TagFlags};
use crate::timeout::TimeoutPair;

/// ICU opcodes (`L4_icu_ops`).
pub mod opcode {
    /// `L4_ICU_OP_BIND`.
    pub const BIND: u64 = 0;
    /// `L4_ICU_OP_UNBIND`.
    pub const UNBIND: u64 = 1;
    /// `L4_ICU_OP_INFO`.
    pub const INFO: u64 = 2;
    /// `L4_ICU_OP_MSI_INFO`.
    pub const MSI_INFO: u64 = 3;
    /// `L4_ICU_OP_UNMASK`.
    pub const UNMASK: u64 = 4;
    /// `L4_ICU_OP_MASK`.
    pub const MASK: u64 = 5;
    /// `L4_ICU_OP_SET_MODE`.
    pub const SET_MODE: u64 = 6;
}

/// `L4_ICU_FLAG_MSI`: the number names an MSI, not a line.
pub const FLAG_MSI: u64 = 0x8000_0000;

/// How to unmask a line after delivery (the bind result).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnmaskVia {
    /// Unmask through the IRQ object (0).
    Irq,
    /// Unmask through the ICU (1).
    Icu,
}

/// Binds hardware line `irqnum` to `irq` (`l4_icu_bind`); needs W on the IRQ.
pub fn bind<K: Kernel>(k: &mut K, icu: Cap<kind::Icu>, irqnum: u64, irq: Cap<kind::Irq>) -> Result<UnmaskVia, Error> {
    let tag = rpc(k, icu.idx(), Protocol::Irq.label(), &[opcode::BIND, irqnum], &[SendItem::cap_arg(irq.idx())])?;
    Ok(if tag.label() == 1 { UnmaskVia::Icu } else { UnmaskVia::Irq })
}

/// Unbinds line `irqnum` from `irq` (`l4_icu_unbind`).
pub fn unbind<K: Kernel>(k: &mut K, icu: Cap<kind::Icu>, irqnum: u64, irq: Cap<kind::Irq>) -> Result<(), Error> {
    rpc(k, icu.idx(), Protocol::Irq.label(), &[opcode::UNBIND, irqnum], &[SendItem::cap_arg(irq.idx())]).map(|_| ())
}

/// What an ICU offers (`l4_icu_info_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcuInfo {
    /// Feature bits (bit 31: MSI support).
    pub features: u64,
    /// Number of IRQ lines.
    pub nr_irqs: u64,
    /// Number of MSIs.
    pub nr_msis: u64,
}

/// Asks the ICU what it offers (`l4_icu_info`).
pub fn info<K: Kernel>(k: &mut K, icu: Cap<kind::Icu>) -> Result<IcuInfo, Error> {
    let tag = rpc(k, icu.idx(), Protocol::Irq.label(), &[opcode::INFO], &[])?;
    expect(tag, 3, 0)?;
    let m = &k.utcb().mr;
    Ok(IcuInfo { features: m[0], nr_irqs: m[1], nr_msis: m[2] })
}

/// MSI address and data for `msi` from source `source` (`l4_icu_msi_info`).
pub fn msi_info<K: Kernel>(k: &mut K, icu: Cap<kind::Icu>, msi: u64, source: u64) -> Result<(u64, u32), Error> {
    let tag = rpc(k, icu.idx(), Protocol::Irq.label(), &[opcode::MSI_INFO, msi, source], &[])?;
    expect(tag, 2, 0)?;
    let m = &k.utcb().mr;
    Ok((m[0], m[1] as u32))
}

/// Unmasks line `irqnum` (`l4_icu_unmask`); send-only.
pub fn unmask<K: Kernel>(k: &mut K, icu: Cap<kind::Icu>, irqnum: u64) -> Result<(), Error> {
    ipc::oneway(k, icu.idx(), Protocol::Irq.label(), &[opcode::UNMASK, irqnum], TagFlags::empty(), TimeoutPair::NEVER)
}

/// Masks line `irqnum` (`l4_icu_mask`); send-only.
pub fn mask<K: Kernel>(k: &mut K, icu: Cap<kind::Icu>, irqnum: u64) -> Result<(), Error> {
    ipc::oneway(k, icu.idx(), Protocol::Irq.label(), &[opcode::MASK, irqnum], TagFlags::empty(), TimeoutPair::NEVER)
}

bitflags::bitflags! {
    /// Trigger modes (`L4_irq_mode`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
    pub struct IrqMode: u64 {
        /// The mode word is valid.
        const VALID = 0x1;
        /// Level (else edge).
        const LEVEL = 0x2;
        /// Negative / low (else positive / high).
        const NEGATIVE = 0x4;
        /// Both edges.
        const BOTH = 0x8;
        /// Set wakeup.
        const SET_WAKEUP = 0x10;
        /// Clear wakeup.
        const CLEAR_WAKEUP = 0x20;
    }
}

/// Sets the trigger mode of line `irqnum` (`l4_icu_set_mode`).
pub fn set_mode<K: Kernel>(k: &mut K, icu: Cap<kind::Icu>, irqnum: u64, mode: IrqMode) -> Result<(), Error> {
    rpc(k, icu.idx(), Protocol::Irq.label(), &[opcode::SET_MODE, irqnum, mode.bits()], &[]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::CapIdx;
    use crate::fake::FakeKernel;
    use crate::ipc::op;
    use crate::msgtag::MsgTag;

    const ICU: Cap<kind::Icu> = Cap::new(CapIdx(6));

    #[test]
    fn bind_and_unbind_words() {
        let mut k = FakeKernel::new();
        k.answer(MsgTag::new(1, 0, 0, Default::default()), 0, &[]);
        assert_eq!(bind(&mut k, ICU, 4, Cap::new(CapIdx(0x40))), Ok(UnmaskVia::Icu));
        assert_eq!(k.last().mrs(), &[0, 4, 8, 0x40037]);
        assert_eq!(k.last().inv.tag.label(), -1);
        assert_eq!(k.last().inv.dest, 0x6003);
        unbind(&mut k, ICU, 4, Cap::new(CapIdx(0x40))).unwrap();
        assert_eq!(k.last().mrs(), &[1, 4, 8, 0x40037]);
    }

    #[test]
    fn info_and_modes() {
        let mut k = FakeKernel::new();
        k.answer(MsgTag::new(0, 3, 0, Default::default()), 0, &[1 << 31, 24, 0]);
        assert_eq!(info(&mut k, ICU), Ok(IcuInfo { features: 1 << 31, nr_irqs: 24, nr_msis: 0 }));
        set_mode(&mut k, ICU, 9, IrqMode::VALID | IrqMode::LEVEL).unwrap();
        assert_eq!(k.last().mrs(), &[6, 9, 3]);
        unmask(&mut k, ICU, 9).unwrap();
        assert_eq!(k.last().inv.dest & 0xf, op::SEND);
        assert_eq!(k.last().mrs(), &[4, 9]);
        mask(&mut k, ICU, 9).unwrap();
        assert_eq!(k.last().mrs(), &[5, 9]);
        k.answer(MsgTag::new(0, 2, 0, Default::default()), 0, &[0xFEE0_0000, 0x4041]);
        assert_eq!(msi_info(&mut k, ICU, 1 | FLAG_MSI, 7), Ok((0xFEE0_0000, 0x4041)));
        assert_eq!(k.last().mrs(), &[3, 0x8000_0001, 7]);
    }
}

//! Thread protocol (label −12): control (pager, exception handler, bind),
//! ex_regs (with CANCEL and TRIGGER_EXCEPTION), switch, stats_time,
//! register_del_irq, modify_senders, and the x86-64 segment base.
//!
//! From `l4sys/include/thread.h` (`l4_thread_control_*`, `l4_thread_ex_regs`,
//! `l4_thread_switch`, `l4_thread_stats_time`, `l4_thread_register_del_irq`,
//! `l4_thread_modify_sender_*`), `ARCH-amd64/segment.h`
//! (`l4_thread_x86_set_segment_base`), and the kernel's
//! `src/kern/thread_object.cpp`. A message to a thread capability is a thread
//! operation only with label −12 and the send bit; anything else is IPC.

use crate::cap::{kind, Cap, CapIdx};
use crate::error::Error;
use crate::ipc::{expect, rpc};
use crate::item::SendItem;
use crate::kernel::Kernel;
use crate::msgtag::Protocol;

/// Thread opcodes (`L4_thread_ops`), MR0 bits 0–15.
pub mod opcode {
    /// `L4_THREAD_CONTROL_OP`.
    pub const CONTROL: u64 = 0;
    /// `L4_THREAD_EX_REGS_OP`.
    pub const EX_REGS: u64 = 1;
    /// `L4_THREAD_SWITCH_OP`.
    pub const SWITCH: u64 = 2;
    /// `L4_THREAD_STATS_OP`.
    pub const STATS: u64 = 3;
    /// `L4_THREAD_VCPU_RESUME_OP`.
    pub const VCPU_RESUME: u64 = 4;
    /// `L4_THREAD_REGISTER_DELETE_IRQ_OP`.
    pub const REGISTER_DEL_IRQ: u64 = 5;
    /// `L4_THREAD_MODIFY_SENDER_OP`.
    pub const MODIFY_SENDERS: u64 = 6;
    /// `L4_THREAD_VCPU_CONTROL_OP`.
    pub const VCPU_CONTROL: u64 = 7;
    /// `L4_THREAD_ARM_TPIDRURO_OP` (arm: set TPIDRRO_EL0).
    pub const ARM_SET_TPIDRURO: u64 = 0x10;
    /// `L4_THREAD_AMD64_SET_SEGMENT_BASE_OP`.
    pub const AMD64_SET_SEGMENT_BASE: u64 = 0x12;
    /// `L4_THREAD_AMD64_GET_SEGMENT_INFO_OP`.
    pub const AMD64_GET_SEGMENT_INFO: u64 = 0x13;
}

bitflags::bitflags! {
    /// Thread-control flags in MR0 (`L4_thread_control_flags`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct ControlFlags: u64 {
        /// `L4_THREAD_CONTROL_SET_PAGER`.
        const SET_PAGER = 0x0001_0000;
        /// `L4_THREAD_CONTROL_BIND_TASK`.
        const BIND_TASK = 0x0020_0000;
        /// `L4_THREAD_CONTROL_ALIEN`.
        const ALIEN = 0x0040_0000;
        /// `L4_THREAD_CONTROL_SET_EXC_HANDLER`.
        const SET_EXC_HANDLER = 0x0100_0000;
    }
}

bitflags::bitflags! {
    /// ex_regs flags in MR0 (`L4_thread_ex_regs_flags`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct ExRegsFlags: u64 {
        /// Abort an ongoing IPC (`L4_THREAD_EX_REGS_CANCEL`).
        const CANCEL = 0x1_0000;
        /// Force an exception IPC (`L4_THREAD_EX_REGS_TRIGGER_EXCEPTION`).
        const TRIGGER_EXCEPTION = 0x2_0000;
        /// arm64: run at EL0 (`L4_THREAD_EX_REGS_ARM64_SET_EL_EL0`); needed
        /// on kernels with virtualisation, accepted as no-op elsewhere. Must
        /// be 0 on amd64.
        const ARM64_SET_EL_EL0 = 0x0100_0000;
        /// arm64: run at EL1 (`L4_THREAD_EX_REGS_ARM64_SET_EL_EL1`).
        const ARM64_SET_EL_EL1 = 0x0200_0000;
    }
}

/// "Keep the current value" for ex_regs IP and SP.
pub const KEEP: u64 = !0;

/// A thread-control request, built like `l4_thread_control_start()` …
/// `l4_thread_control_commit()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Control {
    pager: Option<CapIdx>,
    exc_handler: Option<CapIdx>,
    bind: Option<(u64, CapIdx)>,
    alien: Option<bool>,
}

impl Control {
    /// An empty request (`l4_thread_control_start`).
    pub const fn new() -> Self {
        Control { pager: None, exc_handler: None, bind: None, alien: None }
    }
    /// Sets the pager, a slot **in the thread's own task** (`l4_thread_control_pager`).
    pub const fn pager(mut self, idx: CapIdx) -> Self {
        self.pager = Some(idx);
        self
    }
    /// Sets the exception handler, a slot in the thread's own task
    /// (`l4_thread_control_exc_handler`).
    pub const fn exc_handler(mut self, idx: CapIdx) -> Self {
        self.exc_handler = Some(idx);
        self
    }
    /// Binds the thread to `task` with its UTCB at `utcb` (`l4_thread_control_bind`).
    pub const fn bind(mut self, utcb: u64, task: Cap<kind::Task>) -> Self {
        self.bind = Some((utcb, task.idx()));
        self
    }
    /// Alien mode on/off (`l4_thread_control_alien`).
    pub const fn alien(mut self, on: bool) -> Self {
        self.alien = Some(on);
        self
    }

    /// The untyped words (6) and the optional item, as `commit` sends them.
    pub fn encode(&self) -> ([u64; 6], Option<SendItem>) {
        let mut w = [0u64; 6];
        let mut flags = ControlFlags::empty();
        if let Some(p) = self.pager {
            flags |= ControlFlags::SET_PAGER;
            w[1] = p.sel();
        }
        if let Some(e) = self.exc_handler {
            flags |= ControlFlags::SET_EXC_HANDLER;
            w[2] = e.sel();
        }
        if let Some(on) = self.alien {
            flags |= ControlFlags::ALIEN;
            w[4] = if on { ControlFlags::ALIEN.bits() } else { 0 };
        }
        let mut item = None;
        if let Some((utcb, task)) = self.bind {
            flags |= ControlFlags::BIND_TASK;
            w[5] = utcb;
            item = Some(SendItem::cap_arg(task));
        }
        w[0] = opcode::CONTROL | flags.bits();
        (w, item)
    }
}

/// Sends a control request (`l4_thread_control_commit`). Needs S on the
/// thread capability (and on the task capability when binding).
pub fn control<K: Kernel>(k: &mut K, thread: Cap<kind::Thread>, c: &Control) -> Result<(), Error> {
    let (w, item) = c.encode();
    match item {
        Some(it) => rpc(k, thread.idx(), Protocol::Thread.label(), &w, &[it]),
        None => rpc(k, thread.idx(), Protocol::Thread.label(), &w, &[]),
    }
    .map(|_| ())
}

/// The values ex_regs returns: the state before the call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExRegsOld {
    /// Old flags register (rflags / PSTATE).
    pub flags: u64,
    /// Old instruction pointer.
    pub ip: u64,
    /// Old stack pointer.
    pub sp: u64,
}

/// Sets IP and SP ([`KEEP`] keeps one) and applies `flags`
/// (`l4_thread_ex_regs_ret`). Starts a thread that never ran.
pub fn ex_regs<K: Kernel>(
    k: &mut K,
    thread: Cap<kind::Thread>,
    ip: u64,
    sp: u64,
    flags: ExRegsFlags,
) -> Result<ExRegsOld, Error> {
    let tag = rpc(k, thread.idx(), Protocol::Thread.label(), &[opcode::EX_REGS | flags.bits(), ip, sp], &[])?;
    expect(tag, 3, 0)?;
    let m = &k.utcb().mr;
    Ok(ExRegsOld { flags: m[0], ip: m[1], sp: m[2] })
}

/// Donates the CPU to `thread` if it is ready (`l4_thread_switch`).
pub fn switch_to<K: Kernel>(k: &mut K, thread: Cap<kind::Thread>) -> Result<(), Error> {
    rpc(k, thread.idx(), Protocol::Thread.label(), &[opcode::SWITCH], &[]).map(|_| ())
}

/// CPU time the thread consumed, in µs (`l4_thread_stats_time`).
pub fn stats_time<K: Kernel>(k: &mut K, thread: Cap<kind::Thread>) -> Result<u64, Error> {
    let tag = rpc(k, thread.idx(), Protocol::Thread.label(), &[opcode::STATS], &[])?;
    expect(tag, 1, 0)?;
    Ok(k.utcb().mr[0])
}

/// Registers `irq` to be triggered when an IPC gate bound to `thread` is
/// deleted (`l4_thread_register_del_irq`).
pub fn register_del_irq<K: Kernel>(k: &mut K, thread: Cap<kind::Thread>, irq: Cap<kind::Irq>) -> Result<(), Error> {
    rpc(k, thread.idx(), Protocol::Thread.label(), &[opcode::REGISTER_DEL_IRQ], &[SendItem::cap_arg(irq.idx())])
        .map(|_| ())
}

/// One rule of modify_senders: for a queued sender whose label matches
/// (`label & match_mask == match_value`), `label = (label & !del) | add`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SenderRule {
    /// Bits that take part in the match.
    pub match_mask: u64,
    /// Value they must have.
    pub match_value: u64,
    /// Bits to clear.
    pub del_bits: u64,
    /// Bits to set.
    pub add_bits: u64,
}

/// Rewrites the labels of senders queued on `thread` (`l4_thread_modify_sender_*`).
pub fn modify_senders<K: Kernel>(k: &mut K, thread: Cap<kind::Thread>, rules: &[SenderRule]) -> Result<(), Error> {
    if 1 + 4 * rules.len() > crate::utcb::MR_COUNT {
        return Err(Error::RequestTooLarge);
    }
    let mut w = [0u64; 63];
    w[0] = opcode::MODIFY_SENDERS;
    for (i, r) in rules.iter().enumerate() {
        w[1 + 4 * i..5 + 4 * i].copy_from_slice(&[r.match_mask, r.match_value, r.del_bits, r.add_bits]);
    }
    rpc(k, thread.idx(), Protocol::Thread.label(), &w[..1 + 4 * rules.len()], &[]).map(|_| ())
}

/// x86-64 segment registers whose base can be set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Segment {
    /// FS (free for TLS).
    Fs = 0,
    /// GS (holds the UTCB pointer: do not change).
    Gs = 1,
}

/// Sets the FS or GS base of an amd64 thread (`l4_thread_x86_set_segment_base`).
pub fn amd64_set_segment_base<K: Kernel>(
    k: &mut K,
    thread: Cap<kind::Thread>,
    seg: Segment,
    base: u64,
) -> Result<(), Error> {
    rpc(k, thread.idx(), Protocol::Thread.label(), &[opcode::AMD64_SET_SEGMENT_BASE | ((seg as u64) << 16), base], &[])
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeKernel;
    use crate::fpage::{CapRights, Fpage};
    use crate::msgtag::MsgTag;

    const TH: Cap<kind::Thread> = Cap::new(CapIdx(0x21));

    #[test]
    fn control_matches_fact_sheet_step_6() {
        let mut k = FakeKernel::new();
        let c = Control::new().pager(CapIdx(4)).exc_handler(CapIdx(4)).bind(0xB300_0000, Cap::new(CapIdx(0x20)));
        control(&mut k, TH, &c).unwrap();
        let e = k.last();
        assert_eq!(e.inv.tag.0, ((-12i64 as u64) << 16) | (1 << 6) | 6);
        assert_eq!(
            e.mrs(),
            &[
                0x0001_0000 | 0x0100_0000 | 0x0020_0000,
                0x4000,
                0x4000,
                0,
                0,
                0xB300_0000,
                8,
                Fpage::obj(CapIdx(0x20), 0, CapRights::RWS).0
            ]
        );
    }

    #[test]
    fn control_without_bind_has_no_item_and_six_words() {
        let (w, it) = Control::new().exc_handler(CapIdx(7)).alien(true).encode();
        assert_eq!(w, [0x0140_0000, 0, 0x7000, 0, 0x0040_0000, 0]);
        assert!(it.is_none());
    }

    #[test]
    fn ex_regs_words_and_result() {
        let mut k = FakeKernel::new();
        k.answer(MsgTag::new(0, 3, 0, Default::default()), 0, &[0x202, 0x1000, 0x2000]);
        let old = ex_regs(&mut k, TH, KEEP, KEEP, ExRegsFlags::CANCEL | ExRegsFlags::TRIGGER_EXCEPTION).unwrap();
        assert_eq!(old, ExRegsOld { flags: 0x202, ip: 0x1000, sp: 0x2000 });
        let e = k.last();
        assert_eq!(e.mrs(), &[1 | 0x3_0000, !0, !0]);
        assert_eq!(e.inv.tag.words(), 3);
        // arm64 start (fact sheet §6 step 8)
        k.answer(MsgTag::new(0, 3, 0, Default::default()), 0, &[0, 0, 0]);
        ex_regs(&mut k, TH, 0x40_1000, 0x7000, ExRegsFlags::ARM64_SET_EL_EL0).unwrap();
        assert_eq!(k.last().mrs(), &[0x0100_0001, 0x40_1000, 0x7000]);
    }

    #[test]
    fn small_ops() {
        let mut k = FakeKernel::new();
        switch_to(&mut k, TH).unwrap();
        assert_eq!(k.last().mrs(), &[2]);
        k.answer(MsgTag::new(0, 1, 0, Default::default()), 0, &[12345]);
        assert_eq!(stats_time(&mut k, TH), Ok(12345));
        assert_eq!(k.last().mrs(), &[3]);
        register_del_irq(&mut k, TH, Cap::new(CapIdx(9))).unwrap();
        assert_eq!(k.last().mrs(), &[5, 8, 0x9037]);
        amd64_set_segment_base(&mut k, TH, Segment::Fs, 0x1234_0000).unwrap();
        assert_eq!(k.last().mrs(), &[0x12, 0x1234_0000]);
        amd64_set_segment_base(&mut k, TH, Segment::Gs, 1).unwrap();
        assert_eq!(k.last().mrs(), &[0x1_0012, 1]);
        let r = SenderRule { match_mask: 0xf0, match_value: 0x40, del_bits: 0xf0, add_bits: 0x80 };
        modify_senders(&mut k, TH, &[r]).unwrap();
        assert_eq!(k.last().mrs(), &[6, 0xf0, 0x40, 0xf0, 0x80]);
    }
}

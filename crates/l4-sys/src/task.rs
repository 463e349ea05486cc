//! Task protocol (label −11): map, unmap (with referenced/dirty flags),
//! cap_valid, cap_equal, add_ku_mem, and releasing/deleting capabilities.
//!
//! From `l4sys/include/task.h` (`l4_task_map`, `l4_task_unmap_batch`,
//! `l4_task_cap_valid`, `l4_task_cap_equal`, `l4_task_add_ku_mem`,
//! `l4_task_release_cap`, `l4_task_delete_obj`) and the kernel's
//! `src/kern/task.cpp`, `src/kern/map_util.cpp`.

use crate::cap::{kind, Cap, CapIdx};
use crate::error::Error;
use crate::fpage::{CapRights, Fpage};
use crate::ipc::{expect, rpc};
use crate::item::SendItem;
use crate::kernel::Kernel;
use crate::msgtag::Protocol;

/// Task opcodes (`L4_task_ops`).
pub mod opcode {
    /// `L4_TASK_MAP_OP`.
    pub const MAP: u64 = 0;
    /// `L4_TASK_UNMAP_OP`.
    pub const UNMAP: u64 = 1;
    /// `L4_TASK_CAP_INFO_OP` (cap_valid with 2 words, cap_equal with 3).
    pub const CAP_INFO: u64 = 2;
    /// `L4_TASK_ADD_KU_MEM_OP`.
    pub const ADD_KU_MEM: u64 = 3;
}

/// Unmap masks (`L4_unmap_flags_t`).
pub mod unmap_mask {
    /// Only in tasks that received the mapping from this one.
    pub const CHILDREN: u64 = 0;
    /// `L4_FP_ALL_SPACES`: also in this task.
    pub const ALL_SPACES: u64 = 0x8000_0000;
    /// `L4_FP_DELETE_OBJ`: also try to delete the objects (needs D).
    pub const DELETE_OBJ: u64 = 0xC000_0000;
}

/// Access flags the kernel reports per unmapped fpage (amd64; always 0 on Arm).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AccessFlags {
    /// The page was read or written since the flags were last cleared.
    pub referenced: bool,
    /// The page was written since the flags were last cleared.
    pub dirty: bool,
}

/// Most fpages one unmap call can carry (63 MRs − 2).
pub const UNMAP_MAX: usize = 61;

/// Maps `item.fpage` of `src` into `dst` at the item's hot spot
/// (`l4_task_map`). The invoked capability is the destination, which needs
/// the W right.
pub fn map<K: Kernel>(k: &mut K, dst: Cap<kind::Task>, src: Cap<kind::Task>, item: SendItem) -> Result<(), Error> {
    rpc(
        k,
        dst.idx(),
        Protocol::Task.label(),
        &[opcode::MAP, item.control, item.fpage.0],
        &[SendItem::cap_arg(src.idx())],
    )
    .map(|_| ())
}

/// Revokes the rights given in each fpage (`l4_task_unmap_batch`). On return
/// each entry of `flags` holds the access flags the kernel reported for the
/// fpage at the same position (`flags` must be as long as `fpages`).
pub fn unmap_batch<K: Kernel>(
    k: &mut K,
    task: Cap<kind::Task>,
    fpages: &[Fpage],
    mask: u64,
    flags: &mut [AccessFlags],
) -> Result<(), Error> {
    if fpages.len() > UNMAP_MAX || flags.len() != fpages.len() {
        return Err(Error::RequestTooLarge);
    }
    let mut words = [0u64; 63];
    words[0] = opcode::UNMAP;
    words[1] = mask;
    for (w, f) in words[2..].iter_mut().zip(fpages) {
        *w = f.0;
    }
    let n = 2 + fpages.len();
    let tag = rpc(k, task.idx(), Protocol::Task.label(), &words[..n], &[])?;
    // The kernel answers with the same number of words; anything shorter
    // leaves the flags unknown, which we report rather than guess.
    expect(tag, n, 0)?;
    let u = k.utcb();
    for (i, f) in flags.iter_mut().enumerate() {
        let w = u.mr[2 + i];
        *f = AccessFlags { referenced: w & 1 != 0, dirty: w & 2 != 0 };
    }
    Ok(())
}

/// Revokes the rights given in each of any number of fpages
/// (`l4_task_unmap_batch`, [`UNMAP_MAX`] fpages per kernel call); the access
/// flags the kernel reports are not kept.
pub fn unmap_many<K: Kernel>(k: &mut K, task: Cap<kind::Task>, fpages: &[Fpage], mask: u64) -> Result<(), Error> {
    for chunk in fpages.chunks(UNMAP_MAX) {
        let mut flags = [AccessFlags::default(); UNMAP_MAX];
        unmap_batch(k, task, chunk, mask, &mut flags[..chunk.len()])?;
    }
    Ok(())
}

/// Revokes the rights in one fpage (`l4_task_unmap`).
pub fn unmap<K: Kernel>(k: &mut K, task: Cap<kind::Task>, fpage: Fpage, mask: u64) -> Result<AccessFlags, Error> {
    let mut f = [AccessFlags::default()];
    unmap_batch(k, task, &[fpage], mask, &mut f)?;
    Ok(f[0])
}

/// Does slot `idx` of `task` hold an object (`l4_task_cap_valid`)?
pub fn cap_valid<K: Kernel>(k: &mut K, task: Cap<kind::Task>, idx: CapIdx) -> Result<bool, Error> {
    let tag = rpc(k, task.idx(), Protocol::Task.label(), &[opcode::CAP_INFO, idx.sel()], &[])?;
    Ok(tag.label() == 1)
}

/// Do slots `a` and `b` of `task` name the same object with the same W/S
/// rights (`l4_task_cap_equal`)?
pub fn cap_equal<K: Kernel>(k: &mut K, task: Cap<kind::Task>, a: CapIdx, b: CapIdx) -> Result<bool, Error> {
    let tag = rpc(k, task.idx(), Protocol::Task.label(), &[opcode::CAP_INFO, a.sel(), b.sel()], &[])?;
    Ok(tag.label() == 1)
}

/// Adds kernel-user memory (for UTCBs) at `fpage` (`l4_task_add_ku_mem`).
/// Returns the fpage the kernel set up (it may adjust it), or `fpage` if the
/// reply carries none.
pub fn add_ku_mem<K: Kernel>(k: &mut K, task: Cap<kind::Task>, fpage: Fpage) -> Result<Fpage, Error> {
    let tag = rpc(k, task.idx(), Protocol::Task.label(), &[opcode::ADD_KU_MEM, fpage.0], &[])?;
    Ok(if tag.words() >= 1 { Fpage(k.utcb().mr[0]) } else { fpage })
}

/// Drops the capability in slot `idx` of `task` (`l4_task_release_cap`).
pub fn release_cap<K: Kernel>(k: &mut K, task: Cap<kind::Task>, idx: CapIdx) -> Result<(), Error> {
    unmap_obj(k, task, idx, unmap_mask::ALL_SPACES)
}

/// Deletes the object in slot `idx` of `task` (`l4_task_delete_obj`); needs D.
pub fn delete_obj<K: Kernel>(k: &mut K, task: Cap<kind::Task>, idx: CapIdx) -> Result<(), Error> {
    unmap_obj(k, task, idx, unmap_mask::DELETE_OBJ)
}

/// Deletes the objects of many capabilities of `task` at once
/// (`l4_task_unmap_batch` with `L4_FP_DELETE_OBJ`, one object fpage each,
/// [`UNMAP_MAX`] per kernel call). Why batch: the kernel waits for an RCU
/// grace period at the end of every unmap that deleted something (its reap
/// list, `Task::sys_unmap`) — about a timer tick each on one CPU — so
/// deleting one object per call costs a tick per object.
pub fn delete_objs<K: Kernel>(k: &mut K, task: Cap<kind::Task>, idxs: &[CapIdx]) -> Result<(), Error> {
    for chunk in idxs.chunks(UNMAP_MAX) {
        let mut fpages = [Fpage::INVALID; UNMAP_MAX];
        for (f, idx) in fpages.iter_mut().zip(chunk) {
            *f = Fpage::obj(*idx, 0, CapRights::RWSD);
        }
        unmap_many(k, task, &fpages[..chunk.len()], unmap_mask::DELETE_OBJ)?;
    }
    Ok(())
}

/// Unmaps one capability with all rights; the reply carries no flags we need.
fn unmap_obj<K: Kernel>(k: &mut K, task: Cap<kind::Task>, idx: CapIdx, mask: u64) -> Result<(), Error> {
    let words = [opcode::UNMAP, mask, Fpage::obj(idx, 0, CapRights::RWSD).0];
    rpc(k, task.idx(), Protocol::Task.label(), &words, &[]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeKernel;
    use crate::fpage::MemRights;
    use crate::item::{Cache, ObjAttr};
    use crate::msgtag::MsgTag;

    const CHILD: Cap<kind::Task> = Cap::new(CapIdx(0x20));
    const ME: Cap<kind::Task> = Cap::new(CapIdx(1));

    #[test]
    fn map_object_into_child_slot() {
        let mut k = FakeKernel::new();
        // fact sheet §6 step 4: gate at parent slot 0x30 → child slot 4, client cap
        let it = SendItem::map_obj(CapIdx(4), Fpage::obj(CapIdx(0x30), 0, CapRights::RWS), ObjAttr::empty(), false);
        map(&mut k, CHILD, ME, it).unwrap();
        let e = k.last();
        assert_eq!(e.inv.dest, 0x20003);
        assert_eq!(e.inv.tag.0, ((-11i64 as u64) << 16) | (1 << 6) | 3);
        assert_eq!(e.mrs(), &[0, 0x4008, 0x30037, 8, 0x1037]);
    }

    #[test]
    fn map_memory() {
        let mut k = FakeKernel::new();
        let it = SendItem::map_mem(0x40_0000, Fpage::mem(0x800_0000, 12, MemRights::RWX), Cache::Keep, false);
        map(&mut k, CHILD, ME, it).unwrap();
        assert_eq!(&k.last().mrs()[..3], &[0, 0x40_0008, 0x800_0000 | (12 << 6) | 0x10 | 7]);
    }

    #[test]
    fn unmap_batch_returns_flags_per_fpage() {
        let mut k = FakeKernel::new();
        let f1 = Fpage::mem(0x1000, 12, MemRights::empty());
        let f2 = Fpage::mem(0x2000, 12, MemRights::empty());
        k.answer(MsgTag::new(0, 4, 0, Default::default()), 0, &[1, 0x8000_0000, f1.0 | 3, f2.0 | 1]);
        let mut fl = [AccessFlags::default(); 2];
        unmap_batch(&mut k, CHILD, &[f1, f2], unmap_mask::ALL_SPACES, &mut fl).unwrap();
        assert_eq!(k.log[0].mrs(), &[1, 0x8000_0000, f1.0, f2.0]);
        assert_eq!(fl[0], AccessFlags { referenced: true, dirty: true });
        assert_eq!(fl[1], AccessFlags { referenced: true, dirty: false });
    }

    #[test]
    fn many_objects_are_deleted_in_few_calls() {
        let mut k = FakeKernel::new();
        let idxs: Vec<CapIdx> = (0x100..0x100 + 70).map(CapIdx).collect();
        for n in [UNMAP_MAX, 70 - UNMAP_MAX] {
            let mut reply = vec![1, unmap_mask::DELETE_OBJ];
            reply.extend((0..n).map(|_| 0));
            k.answer(MsgTag::new(0, n + 2, 0, Default::default()), 0, &reply);
        }
        delete_objs(&mut k, ME, &idxs).unwrap();
        assert_eq!(k.log.len(), 2, "70 objects, two kernel calls");
        let first = k.log[0].mrs();
        assert_eq!(&first[..3], &[1, unmap_mask::DELETE_OBJ, Fpage::obj(CapIdx(0x100), 0, CapRights::RWSD).0]);
        assert_eq!(first.len(), 2 + UNMAP_MAX);
        assert_eq!(k.log[1].mrs()[2], Fpage::obj(CapIdx(0x100 + UNMAP_MAX as u64), 0, CapRights::RWSD).0);
    }

    #[test]
    fn unmap_refuses_too_many_and_short_replies() {
        let mut k = FakeKernel::new();
        let many = [Fpage::INVALID; 62];
        let mut fl = [AccessFlags::default(); 62];
        assert_eq!(unmap_batch(&mut k, CHILD, &many, 0, &mut fl), Err(Error::RequestTooLarge));
        k.answer(MsgTag(0), 0, &[]);
        assert!(matches!(unmap(&mut k, CHILD, Fpage::INVALID, 0), Err(Error::MalformedReply { .. })));
    }

    #[test]
    fn cap_valid_and_equal() {
        let mut k = FakeKernel::new();
        k.answer(MsgTag::new(1, 0, 0, Default::default()), 0, &[]);
        assert_eq!(cap_valid(&mut k, ME, CapIdx(5)), Ok(true));
        assert_eq!(k.last().mrs(), &[2, 0x5000]);
        k.answer(MsgTag::new(0, 0, 0, Default::default()), 0, &[]);
        assert_eq!(cap_equal(&mut k, ME, CapIdx(5), CapIdx(6)), Ok(false));
        assert_eq!(k.last().mrs(), &[2, 0x5000, 0x6000]);
    }

    #[test]
    fn release_and_delete_use_unmap_masks() {
        let mut k = FakeKernel::new();
        release_cap(&mut k, ME, CapIdx(9)).unwrap();
        assert_eq!(k.last().mrs(), &[1, 0x8000_0000, 0x903F]);
        delete_obj(&mut k, ME, CapIdx(9)).unwrap();
        assert_eq!(k.last().mrs(), &[1, 0xC000_0000, 0x903F]);
        add_ku_mem(&mut k, CHILD, Fpage::mem(0xB300_1000, 12, MemRights::empty())).unwrap();
        assert_eq!(k.last().mrs(), &[3, 0xB300_1000 | (12 << 6) | 0x10]);
    }
}

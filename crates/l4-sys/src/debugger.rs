//! Debugger / JDB protocol (label −23, capability 10 on kernels with
//! `CONFIG_RT_DBG`): name kernel objects so the JDB lists show them, enter
//! the debugger, print through it, and dump the object mapping database.
//!
//! From `l4sys/include/debugger.h` / `kdebug.h` (`l4_debugger_set_object_name`,
//! `l4_debugger_global_id`, `l4_debugger_query_log_*`, `enter_kdebug`),
//! `l4sys/include/obj_info.h` (`L4_kobj_info`), and the kernel's
//! `src/kern/jdb_object.cpp`, `src/jdb/jdb_kobject_names.cpp`,
//! `src/jdb/jdb_mapdb.cpp`.

use crate::cap::{kind, Cap};
use crate::error::Error;
use crate::ipc::{self, expect, rpc};
use crate::item::SendItem;
use crate::kernel::Kernel;
use crate::msgtag::{MsgTag, Protocol};
use crate::timeout::TimeoutPair;

/// Debugger opcodes (MR0: group << 8 | op).
pub mod opcode {
    /// Enter JDB with a text (`enter_kdebug`); `*#` executes JDB commands.
    pub const ENTER: u64 = 0;
    /// Print a string.
    pub const OUTSTRING: u64 = 2;
    /// `L4_DEBUGGER_NAME_SET`: name an object.
    pub const NAME_SET: u64 = 0x100;
    /// `L4_DEBUGGER_GLOBAL_ID`: global debug id of an object.
    pub const GLOBAL_ID: u64 = 0x101;
    /// `L4_DEBUGGER_NAME_GET`: an object's name.
    pub const NAME_GET: u64 = 0x108;
    /// `L4_DEBUGGER_OBJECT_INFO`: dump objects and mappings into a ku_mem buffer.
    pub const OBJECT_INFO: u64 = 0x110;
}

/// Bytes of a name the kernel keeps.
pub const NAME_MAX: usize = 16;

/// Names the object behind `obj` (`l4_debugger_set_object_name`); the kernel
/// keeps the first 16 bytes. Names show in JDB's object and task lists.
pub fn set_object_name<K: Kernel, T>(
    k: &mut K,
    dbg: Cap<kind::Debugger>,
    obj: Cap<T>,
    name: &str,
) -> Result<(), Error> {
    let bytes = name.as_bytes();
    let n = bytes.len().min(NAME_MAX - 1);
    // NUL-terminated name in MR1..
    let mut buf = [0u8; NAME_MAX];
    buf[..n].copy_from_slice(&bytes[..n]);
    let name_words = (n + 1).div_ceil(8);
    let mut words = [0u64; 3];
    words[0] = opcode::NAME_SET;
    for i in 0..name_words {
        words[1 + i] = u64::from_le_bytes(buf[8 * i..8 * i + 8].try_into().unwrap_or([0; 8]));
    }
    rpc(k, dbg.idx(), Protocol::Debugger.label(), &words[..1 + name_words], &[SendItem::cap_arg(obj.idx())]).map(|_| ())
}

/// The global debug id of the object behind `obj` (`l4_debugger_global_id`):
/// the number JDB shows for it.
pub fn global_id<K: Kernel, T>(k: &mut K, dbg: Cap<kind::Debugger>, obj: Cap<T>) -> Result<u64, Error> {
    let tag = rpc(k, dbg.idx(), Protocol::Debugger.label(), &[opcode::GLOBAL_ID], &[SendItem::cap_arg(obj.idx())])?;
    expect(tag, 1, 0)?;
    Ok(k.utcb().mr[0])
}

/// Enters JDB (`enter_kdebug`). A text starting with `*#` is run as JDB
/// commands. Longer texts than fit are refused.
pub fn enter<K: Kernel>(k: &mut K, dbg: Cap<kind::Debugger>, text: &str) -> Result<(), Error> {
    text_op(k, dbg, opcode::ENTER, text.as_bytes())
}

/// Prints through the debugger's console.
pub fn print<K: Kernel>(k: &mut K, dbg: Cap<kind::Debugger>, text: &str) -> Result<(), Error> {
    text_op(k, dbg, opcode::OUTSTRING, text.as_bytes())
}

fn text_op<K: Kernel>(k: &mut K, dbg: Cap<kind::Debugger>, op: u64, b: &[u8]) -> Result<(), Error> {
    if b.len() > crate::log::WRITE_MAX {
        return Err(Error::RequestTooLarge);
    }
    let words = 2 + b.len().div_ceil(8);
    let u = k.utcb();
    u.mr[0] = op;
    u.mr[1] = b.len() as u64;
    for (i, c) in b.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        u.mr[2 + i] = u64::from_le_bytes(w);
    }
    let r = ipc::call(k, dbg.idx(), MsgTag::proto(Protocol::Debugger, words, 0), TimeoutPair::NEVER)?;
    let tcr = k.utcb().tcr_error;
    crate::error::check(r.tag, tcr).map(|_| ())
}

/// Size of one record of the object dump (`L4_kobj_info`).
pub const KOBJ_INFO_SIZE: usize = 64;

/// Dumps kernel objects and capability mappings (`l4_debugger_query_log_*`
/// style op 0x110) into `buf_addr` (which must lie in the caller's ku_mem;
/// the kernel does not check), skipping `skip` records. Returns
/// (records written, total records).
pub fn object_info<K: Kernel, T>(
    k: &mut K,
    dbg: Cap<kind::Debugger>,
    any_obj: Cap<T>,
    buf_addr: u64,
    buf_size: u64,
    skip: u64,
) -> Result<(u64, u64), Error> {
    let tag = rpc(
        k,
        dbg.idx(),
        Protocol::Debugger.label(),
        &[opcode::OBJECT_INFO, buf_addr, buf_size, skip],
        &[SendItem::cap_arg(any_obj.idx())],
    )?;
    expect(tag, 2, 0)?;
    let m = &k.utcb().mr;
    Ok((m[0], m[1]))
}

/// Object types in the dump (`L4_kobj_info::*::Type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KobjType {
    /// A capability mapping of the object before it (0).
    Mapping,
    /// Thread (1).
    Thread,
    /// Task / space (2).
    Space,
    /// VM (3).
    Vm,
    /// IPC gate (4).
    IpcGate,
    /// IRQ sender (5).
    IrqSender,
    /// IRQ semaphore (6).
    IrqSemaphore,
    /// Factory (7).
    Factory,
    /// JDB (8).
    Jdb,
    /// Scheduler (9).
    Scheduler,
    /// Vlog (10).
    Vlog,
    /// ICU / platform controller (11).
    Pfc,
    /// DMA space (12).
    DmarSpace,
    /// IOMMU (13).
    Iommu,
    /// SMMU (14).
    Smmu,
    /// Another value.
    Other(u8),
}

/// The type-specific part of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KobjDetail {
    /// A mapping: which space holds it, at which index, with which rights.
    Mapping {
        /// Name of the holding space (as set with [`set_object_name`]), NUL-padded.
        space_name: [u8; 16],
        /// Capability index in that space.
        cap_idx: u32,
        /// Rights of the entry.
        rights: u16,
        /// Flags of the entry.
        flags: u16,
    },
    /// An IPC gate: its label and the id of the bound thread (0 if none).
    IpcGate {
        /// Label (without rights bits).
        label: u64,
        /// Debug id of the bound thread.
        thread_id: u64,
    },
    /// An IRQ: bind label and target thread.
    Irq {
        /// Pin on its chip.
        pin: u32,
        /// Bind label.
        label: u64,
        /// Debug id of the bound thread.
        target_id: u64,
        /// Pending deliveries.
        queued: i64,
    },
    /// A thread: the debug id of its space.
    Thread {
        /// Debug id of the task it is bound to.
        space_id: u64,
    },
    /// A factory: quota used and limit.
    Factory {
        /// Bytes in use.
        current: u64,
        /// Limit.
        limit: u64,
    },
    /// Nothing decoded.
    None,
}

/// One 64-byte record of the object dump ([`object_info`], `L4_kobj_info`
/// in `l4sys/include/obj_info.h`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KobjInfo {
    /// Record type.
    pub ty: KobjType,
    /// Global debug id (for mappings: of the mapped object).
    pub id: u64,
    /// Reference count (objects).
    pub ref_cnt: u64,
    /// Type-specific fields.
    pub detail: KobjDetail,
}

impl KobjInfo {
    /// Decodes one record.
    pub fn parse(r: &[u8; KOBJ_INFO_SIZE]) -> Self {
        let w = |o: usize| u64::from_le_bytes(r[o..o + 8].try_into().unwrap_or([0; 8]));
        let w0 = w(0);
        let ty = match (w0 & 0x1f) as u8 {
            0 => KobjType::Mapping,
            1 => KobjType::Thread,
            2 => KobjType::Space,
            3 => KobjType::Vm,
            4 => KobjType::IpcGate,
            5 => KobjType::IrqSender,
            6 => KobjType::IrqSemaphore,
            7 => KobjType::Factory,
            8 => KobjType::Jdb,
            9 => KobjType::Scheduler,
            10 => KobjType::Vlog,
            11 => KobjType::Pfc,
            12 => KobjType::DmarSpace,
            13 => KobjType::Iommu,
            14 => KobjType::Smmu,
            v => KobjType::Other(v),
        };
        let detail = match ty {
            KobjType::Mapping => {
                let mut space_name = [0u8; 16];
                space_name.copy_from_slice(&r[32..48]);
                KobjDetail::Mapping {
                    space_name,
                    cap_idx: u32::from_le_bytes(r[48..52].try_into().unwrap_or([0; 4])),
                    rights: u16::from_le_bytes([r[52], r[53]]),
                    flags: u16::from_le_bytes([r[54], r[55]]),
                }
            }
            KobjType::IpcGate => KobjDetail::IpcGate { label: w(24), thread_id: w(32) },
            KobjType::IrqSender => KobjDetail::Irq {
                pin: u32::from_le_bytes(r[36..40].try_into().unwrap_or([0; 4])),
                label: w(40),
                target_id: w(48),
                queued: w(56) as i64,
            },
            KobjType::Thread => KobjDetail::Thread { space_id: w(48) },
            KobjType::Factory => KobjDetail::Factory { current: w(24), limit: w(32) },
            _ => KobjDetail::None,
        };
        KobjInfo { ty, id: w0 >> 5, ref_cnt: w(16), detail }
    }

    /// For a mapping: the holding space's name as text.
    pub fn space_name(&self) -> Option<&str> {
        match &self.detail {
            KobjDetail::Mapping { space_name, .. } => {
                let n = space_name.iter().position(|&c| c == 0).unwrap_or(16);
                core::str::from_utf8(&space_name[..n]).ok()
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::CapIdx;
    use crate::fake::FakeKernel;

    const DBG: Cap<kind::Debugger> = Cap::new(CapIdx(10));

    #[test]
    fn name_is_nul_terminated_and_cut_to_16_bytes() {
        let mut k = FakeKernel::new();
        set_object_name(&mut k, DBG, Cap::<kind::Thread>::new(CapIdx(3)), "rtcr").unwrap();
        let e = k.last();
        assert_eq!(e.inv.dest, 0xA003);
        assert_eq!(e.inv.tag.label(), -23);
        assert_eq!(e.words(), &[0x100, u64::from_le_bytes(*b"rtcr\0\0\0\0")]);
        assert_eq!(e.items(), &[8, 0x3037]);
        set_object_name(&mut k, DBG, Cap::<kind::Task>::new(CapIdx(1)), "a-very-long-task-name").unwrap();
        let e = k.last();
        assert_eq!(e.inv.tag.words(), 3);
        assert_eq!(e.words()[1], u64::from_le_bytes(*b"a-very-l"));
        assert_eq!(e.words()[2], u64::from_le_bytes(*b"ong-tas\0"));
    }

    #[test]
    fn enter_and_dump() {
        let mut k = FakeKernel::new();
        enter(&mut k, DBG, "*#s").unwrap();
        assert_eq!(k.last().words(), &[0, 3, u64::from_le_bytes(*b"*#s\0\0\0\0\0")]);
        k.answer(MsgTag::new(0, 2, 0, Default::default()), 0, &[5, 90]);
        assert_eq!(object_info(&mut k, DBG, Cap::<kind::Task>::new(CapIdx(1)), 0x7000, 4096, 0), Ok((5, 90)));
        assert_eq!(k.last().mrs(), &[0x110, 0x7000, 4096, 0, 8, 0x1037]);
        k.answer(MsgTag::new(0, 1, 0, Default::default()), 0, &[0x2a]);
        assert_eq!(global_id(&mut k, DBG, Cap::<kind::Task>::new(CapIdx(1))), Ok(0x2a));
    }

    #[test]
    fn kobj_records_decode() {
        // L4_kobj_info: type:5 id:59, mapping_ptr, ref_cnt, union at 24
        let mut r = [0u8; 64];
        r[0..8].copy_from_slice(&(0x9u64 << 5).to_le_bytes()); // type 0 = mapping
        r[32..36].copy_from_slice(b"rtcr");
        r[48..52].copy_from_slice(&0x20u32.to_le_bytes());
        r[52..54].copy_from_slice(&0xfu16.to_le_bytes());
        let m = KobjInfo::parse(&r);
        assert_eq!(m.ty, KobjType::Mapping);
        assert_eq!(m.id, 9);
        assert_eq!(m.space_name(), Some("rtcr"));
        assert!(matches!(m.detail, KobjDetail::Mapping { cap_idx: 0x20, rights: 0xf, .. }));
        let mut g = [0u8; 64];
        g[0..8].copy_from_slice(&((0x11u64 << 5) | 4).to_le_bytes());
        g[16..24].copy_from_slice(&2u64.to_le_bytes());
        g[24..32].copy_from_slice(&0x100u64.to_le_bytes());
        g[32..40].copy_from_slice(&0xbu64.to_le_bytes());
        let gi = KobjInfo::parse(&g);
        assert_eq!((gi.ty, gi.id, gi.ref_cnt), (KobjType::IpcGate, 0x11, 2));
        assert_eq!(gi.detail, KobjDetail::IpcGate { label: 0x100, thread_id: 0xb });
        let mut q = [0u8; 64];
        q[0] = 5;
        q[36..40].copy_from_slice(&7u32.to_le_bytes());
        q[40..48].copy_from_slice(&0x55u64.to_le_bytes());
        assert!(matches!(KobjInfo::parse(&q).detail, KobjDetail::Irq { pin: 7, label: 0x55, .. }));
    }
}

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
}

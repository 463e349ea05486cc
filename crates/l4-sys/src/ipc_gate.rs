//! IPC-gate protocol (label −10): bind (see [`crate::rcv_endpoint`]) and get_infos.
//!
//! From `l4sys/include/ipc_gate.h` (`l4_ipc_gate_get_infos`) and the kernel's
//! `src/kern/ipc_gate.cpp` (`Ipc_gate_ctl`). Only a capability with the
//! server right (mapped with [`crate::item::ObjAttr::IPCGATE_SVR`]) reaches
//! these operations; through a client capability any message is IPC.

use crate::cap::{kind, Cap};
use crate::error::Error;
use crate::ipc::{expect, rpc};
use crate::kernel::Kernel;
use crate::msgtag::Protocol;

pub use crate::rcv_endpoint::bind_thread;

/// `L4_IPC_GATE_GET_INFO_OP`.
pub const GET_INFO_OP: u64 = 0x11;

/// Reads the gate's label, without the rights bits (`l4_ipc_gate_get_infos`).
pub fn get_infos<K: Kernel>(k: &mut K, gate: Cap<kind::IpcGate>) -> Result<u64, Error> {
    let tag = rpc(k, gate.idx(), Protocol::Kobject.label(), &[GET_INFO_OP], &[])?;
    expect(tag, 1, 0)?;
    Ok(k.utcb().mr[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::CapIdx;
    use crate::fake::FakeKernel;
    use crate::msgtag::MsgTag;

    #[test]
    fn get_infos_reads_mr0() {
        let mut k = FakeKernel::new();
        k.answer(MsgTag::new(0, 1, 0, Default::default()), 0, &[0x40]);
        assert_eq!(get_infos(&mut k, Cap::new(CapIdx(4))), Ok(0x40));
        assert_eq!(k.last().mrs(), &[0x11]);
        assert_eq!(k.last().inv.tag.label(), -10);
    }

    #[test]
    fn short_reply_is_malformed() {
        let mut k = FakeKernel::new();
        k.answer(MsgTag(0), 0, &[]);
        assert!(matches!(get_infos(&mut k, Cap::new(CapIdx(4))), Err(Error::MalformedReply { .. })));
    }
}

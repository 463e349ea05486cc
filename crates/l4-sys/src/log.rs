//! Log / vcon protocol (label −13): write text to the kernel console.
//!
//! From `l4sys/include/vcon.h` (`l4_vcon_write`, `L4_VCON_WRITE_SIZE`) and the
//! kernel's `src/kern/vlog.cpp`. A write is send-only; the kernel takes at
//! most 488 bytes per call ((63 − 2) · 8) and silently drops longer ones, so
//! [`write`] cuts text into chunks of that size.

use crate::cap::{kind, Cap};
use crate::error::Error;
use crate::ipc;
use crate::kernel::Kernel;
use crate::msgtag::{MsgTag, Protocol};
use crate::timeout::TimeoutPair;

/// `L4_VCON_WRITE_OP`.
pub const WRITE_OP: u64 = 0;
/// `L4_VCON_READ_OP`.
pub const READ_OP: u64 = 1;
/// `L4_VCON_SET_ATTR_OP`: words 1–3 the attributes (i, o, l flags).
pub const SET_ATTR_OP: u64 = 2;
/// `L4_VCON_GET_ATTR_OP`: the reply's words 1–3 are the attributes.
pub const GET_ATTR_OP: u64 = 3;
/// `L4_VCON_READ_STAT_DONE` in a read reply's word 0: nothing more to read.
pub const READ_STAT_DONE: u64 = 1 << 31;
/// Most bytes one write carries (`L4_VCON_WRITE_SIZE`).
pub const WRITE_MAX: usize = (crate::utcb::MR_COUNT - 2) * 8;

/// Writes one chunk of at most [`WRITE_MAX`] bytes (`l4_vcon_write`).
pub fn write_chunk<K: Kernel>(k: &mut K, log: Cap<kind::Log>, bytes: &[u8]) -> Result<(), Error> {
    if bytes.len() > WRITE_MAX {
        return Err(Error::RequestTooLarge);
    }
    let words = 2 + bytes.len().div_ceil(8);
    let u = k.utcb();
    u.mr[0] = WRITE_OP;
    u.mr[1] = bytes.len() as u64;
    for (i, chunk) in bytes.chunks(8).enumerate() {
        let mut w = [0u8; 8];
        w[..chunk.len()].copy_from_slice(chunk);
        u.mr[2 + i] = u64::from_le_bytes(w);
    }
    ipc::send(k, log.idx(), MsgTag::proto(Protocol::Log, words, 0), TimeoutPair::NEVER)
}

/// Writes all of `bytes`, in chunks the kernel accepts.
pub fn write<K: Kernel>(k: &mut K, log: Cap<kind::Log>, bytes: &[u8]) -> Result<(), Error> {
    for c in bytes.chunks(WRITE_MAX) {
        write_chunk(k, log, c)?;
    }
    Ok(())
}

/// A `core::fmt::Write` sink over the log capability, for `write!`.
pub struct LogWriter<'k, K: Kernel> {
    k: &'k mut K,
    log: Cap<kind::Log>,
}

impl<'k, K: Kernel> LogWriter<'k, K> {
    /// A writer to `log`.
    pub fn new(k: &'k mut K, log: Cap<kind::Log>) -> Self {
        LogWriter { k, log }
    }
}

impl<K: Kernel> core::fmt::Write for LogWriter<'_, K> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        write(self.k, self.log, s.as_bytes()).map_err(|_| core::fmt::Error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cap::CapIdx;
    use crate::fake::FakeKernel;
    use crate::ipc::op;

    const LOG: Cap<kind::Log> = Cap::new(CapIdx(5));

    #[test]
    fn write_packs_bytes_little_endian() {
        let mut k = FakeKernel::new();
        write(&mut k, LOG, b"hello, fiasco").unwrap();
        let e = k.last();
        assert_eq!(e.inv.dest, 0x5000 | op::SEND);
        assert_eq!(e.inv.tag.label(), -13);
        assert_eq!(e.inv.tag.words(), 4);
        assert_eq!(e.words()[0], 0);
        assert_eq!(e.words()[1], 13);
        assert_eq!(e.words()[2], u64::from_le_bytes(*b"hello, f"));
        assert_eq!(e.words()[3], u64::from_le_bytes(*b"iasco\0\0\0"));
    }

    #[test]
    fn long_text_is_chunked_at_the_kernel_limit() {
        assert_eq!(WRITE_MAX, 488);
        let mut k = FakeKernel::new();
        let text = [b'x'; 1000];
        write(&mut k, LOG, &text).unwrap();
        let lens: Vec<u64> = k.log.iter().map(|e| e.words()[1]).collect();
        assert_eq!(lens, vec![488, 488, 24]);
        assert_eq!(k.log[0].inv.tag.words(), 63);
        assert!(write_chunk(&mut k, LOG, &[0; 489]).is_err());
    }

    #[test]
    fn fmt_writer() {
        use core::fmt::Write as _;
        let mut k = FakeKernel::new();
        write!(LogWriter::new(&mut k, LOG), "n={}", 42).unwrap();
        let all: Vec<u8> = k
            .log
            .iter()
            .flat_map(|e| {
                let n = e.words()[1] as usize;
                e.words()[2..].iter().flat_map(|w| w.to_le_bytes()).take(n).collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(all, b"n=42");
    }
}

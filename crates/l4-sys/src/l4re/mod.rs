//! L4Re's own protocols, above the kernel's: what an L4Re program sends to
//! the region map, the memory allocator, dataspaces, namespaces and its
//! parent (`l4re/include/protocols.h`). rtcr is the server of these for an
//! L4Re child; the encoders are what an L4Re client sends, so the model's
//! L4Re child and rtcr's decoders are tested against the same words.
//!
//! L4Re's C++ IPC framework lays a call out as: word 0 the opcode (the
//! RPC's index in the interface's `Rpcs` list), then each input argument
//! at its natural alignment, capabilities as send items after the words;
//! the reply's tag label is the return value, its words the outputs.

pub mod dataspace;
pub mod rm;

/// `L4RE_PROTO_DATASPACE`.
pub const PROTO_DATASPACE: i64 = 0x4000;
/// `L4RE_PROTO_NAMESPACE`.
pub const PROTO_NAMESPACE: i64 = 0x4001;
/// `L4RE_PROTO_PARENT`.
pub const PROTO_PARENT: i64 = 0x4002;
/// `L4RE_PROTO_RM`.
pub const PROTO_RM: i64 = 0x4005;
/// `L4RE_PROTO_MEM_ALLOC`.
pub const PROTO_MEM_ALLOC: i64 = 0x400b;
/// `L4_PROTO_META`: interface queries (`L4::Meta`).
pub const PROTO_META: i64 = -21;
/// `L4_INVALID_CAP`, as L4Re sends it for "no capability".
pub const INVALID_CAP: u64 = !0u64 << 11;

/// The opcode of an L4Re request: word 0's low 4 bytes (an `int`; L4Re
/// leaves the upper half as it was).
pub fn opcode(words: &[u64]) -> Option<u64> {
    Some(*words.first()? & 0xffff_ffff)
}

/// A name sent as `Array<char const, unsigned long>` at word `at` (length
/// word, then the bytes, no NUL): the bytes, at most `buf.len()`.
pub fn name_at<'b>(words: &[u64], at: usize, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let len = usize::try_from(*words.get(at)?).ok()?;
    let w = words.get(at + 1..at + 1 + len.div_ceil(8))?;
    if len > buf.len() {
        return None;
    }
    for (i, b) in w.iter().flat_map(|x| x.to_le_bytes()).take(len).enumerate() {
        buf[i] = b;
    }
    Some(&buf[..len])
}

/// `L4Re::Namespace::query`'s opcode.
pub const NS_QUERY: u64 = 0;
/// `L4Re::Parent::signal`'s opcode (`signal(sig, val)`; sig 0 is the exit).
pub const PARENT_SIGNAL: u64 = 0;

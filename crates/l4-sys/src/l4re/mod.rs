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

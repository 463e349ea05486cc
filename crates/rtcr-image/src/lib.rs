//! The rtcr checkpoint image format and the A/B checkpoint store.
//!
//! One crate, `no_std` with `alloc`, because the same bytes are written by
//! the root task on the ECU, restored there or on another ECU, checked by
//! the model tests and shown by `rtcrctl` on a host; a single definition of
//! the format means none of them can disagree about it.
//!
//! - [`record`]: what a checkpoint holds ([`Checkpoint`] and its records).
//! - [`image`]: the container — a fixed, checksummed header and the postcard
//!   body — with [`encode`], [`decode`], [`decode_for`], [`verify`] and
//!   [`read_header`]; every defect is an [`ImageError`], never a panic.
//! - [`store`]: two image slots in a reserved region ([`Store`]), so that a
//!   torn write never loses the last good checkpoint.
//! - [`checksum`]: the checksum an image's format version uses: XXH64
//!   (version 5), [`crc`] CRC-64/XZ (versions 1 to 3).

#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod checksum;
pub mod crc;
pub mod dump;
pub mod image;
pub mod record;
pub mod store;

pub use image::{
    check, decode, decode_borrowed_for, decode_for, encode, read_header, verify, verify_prefix, Arch, BodyError,
    Header, ImageError, ImageMeta, FORMAT_VERSION, HEADER_LEN, MAGIC, UTCB_WORDS,
};
pub use record::{
    CapRecord, Checkpoint, ObjRef, ObjectRecord, PageBytes, PageRecord, Placement, Service, ThreadRecord, ThreadState,
};
pub use store::{MemRegion, Region, RegionError, Slot, SlotStatus, Store, StoreError, TearingRegion};

//! What a checkpoint holds: the records of one consistent cut of a child.
//!
//! The schema is the contract between rtcr (which writes images), the
//! restorer (which may run on another ECU, from the bytes alone) and
//! rtcrctl (which shows them). Everything is plain data; objects refer to
//! each other by their index in [`Checkpoint::objects`], never by kernel
//! ids or addresses, which change from boot to boot.

use alloc::string::String;
use alloc::vec::Vec;
use serde::{Deserialize, Serialize};

/// Index of an object in [`Checkpoint::objects`].
pub type ObjRef = u32;

/// One consistent cut of a child.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The child's name (its boot module or scenario name).
    pub child: String,
    /// Kernel clock at the cut (µs).
    pub clock_us: u64,
    /// The child's UTCB area: address and log2 size.
    pub utcb_area: (u64, u8),
    /// Every kernel object the child can reach, once each.
    pub objects: Vec<ObjectRecord>,
    /// Every occupied capability slot of the child.
    pub caps: Vec<CapRecord>,
    /// Every thread of the child.
    pub threads: Vec<ThreadRecord>,
    /// Every page of the child's memory (full contents: the image is
    /// self-contained even when the checkpoint copied only dirty pages).
    pub pages: Vec<PageRecord>,
    /// Where the child's threads ran: one entry per thread that was given
    /// a CPU, in thread order (format version 4; an older image has none,
    /// and its threads run on rtcr's CPU).
    pub placement: Vec<Placement>,
}

/// A thread's CPU and the set it was asked for (`l4_sched_cpu_set_t`), so
/// that a restore on an ECU without that CPU can pick another from the
/// same set first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    /// Index into [`Checkpoint::threads`].
    pub thread: u32,
    /// The CPU it ran on (kernel CPU number).
    pub cpu: u32,
    /// The CPU set it asked for: granularity << 24 | offset, and the map.
    pub affinity: (u64, u64),
}

/// The kinds of objects a child holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectRecord {
    /// The child's own task (its slot holds a gate rtcr serves).
    Task,
    /// A thread of the child (index into [`Checkpoint::threads`]).
    Thread {
        /// Index into `threads`.
        thread: u32,
    },
    /// An IPC gate created by the child.
    Gate {
        /// Label (bits 0–1 clear).
        label: u64,
        /// The thread it is bound to (an object of kind `Thread`), if any.
        bound: Option<ObjRef>,
    },
    /// An IRQ object created by the child.
    Irq {
        /// Bind label.
        label: u64,
        /// The thread it is bound to, if any.
        bound: Option<ObjRef>,
        /// The hardware line it is bound to through the ICU, if any.
        hw_line: Option<u32>,
        /// A delivery was pending at the cut.
        pending: bool,
    },
    /// A semaphore created by the child.
    Semaphore {
        /// Count at the cut.
        count: u64,
    },
    /// A service rtcr provides in the child's initial slots (factory,
    /// scheduler, log, pager, ICU, task, thread proxies).
    Service {
        /// Which one.
        service: Service,
        /// Label of the gate rtcr serves it through.
        label: u64,
    },
    /// The KIP, where the child received it (sigma0 protocol, into a window
    /// of its choosing): a restore maps the kernel's KIP there again. No
    /// capability names it. (Format version 2.)
    Kip {
        /// The child's address of the page.
        vaddr: u64,
    },
    /// A dataspace rtcr gave an L4Re child (through mem_alloc, or a boot
    /// module under `rom/`). Its pages are in [`Checkpoint::pages`] at the
    /// addresses where regions show them; pages no region shows are kept
    /// here. (Format version 3.)
    Dataspace {
        /// Size in bytes (page multiple).
        size: u64,
        /// The flags it was allocated with (L4Re `Mem_alloc` flags; for a
        /// boot module: read-only).
        flags: u64,
        /// The boot module it shows, read-only (`rom/<name>`), if any: its
        /// bytes come from the module on the ECU that restores it.
        rom: Option<String>,
        /// Pages of it no region shows: (offset, bytes; none for zeros).
        loose: Vec<(u64, Vec<u8>)>,
    },
    /// A region of an L4Re child's region map (`L4Re::Rm::attach`).
    /// (Format version 3.)
    Region {
        /// First address (page aligned).
        start: u64,
        /// Length in bytes (page multiple).
        size: u64,
        /// The attach flags (rights R 1, W 2, X 4 as L4Re has them, and
        /// the region flags above them).
        flags: u64,
        /// The dataspace it shows (an object of kind `Dataspace`), if any.
        ds: Option<ObjRef>,
        /// Offset into the dataspace.
        offset: u64,
        /// The child's capability index of the dataspace as it named it
        /// when attaching (given back by `detach`).
        client_cap: u64,
    },
    /// An area reserved in an L4Re child's region map
    /// (`L4Re::Rm::reserve_area`). (Format version 3.)
    Area {
        /// First address.
        start: u64,
        /// Length in bytes.
        size: u64,
        /// The area flags.
        flags: u64,
    },
}

/// Services rtcr offers a child (DESIGN.md, "What the child holds").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Service {
    /// The child's task capability (map/unmap/cap_valid/cap_equal on itself).
    Task,
    /// The factory.
    Factory,
    /// A proxy for one of the child's threads.
    Thread,
    /// The pager (sigma0 protocol, page faults).
    Pager,
    /// The kernel log.
    Log,
    /// The ICU.
    Icu,
    /// The scheduler.
    Scheduler,
    /// The exception handler.
    Exception,
    /// An IRQ proxy (bind/detach/trigger/unmask through rtcr).
    Irq,
    /// An L4Re region map (`L4Re::Env::rm`; page faults too).
    Rm,
    /// An L4Re memory allocator (`L4Re::Env::mem_alloc`).
    MemAlloc,
    /// A dataspace's gate (index: the dataspace's object).
    Dataspace,
    /// An L4Re namespace (`rom/`).
    Namespace,
    /// An L4Re parent (`signal`: the child's exit).
    Parent,
}

/// One occupied capability slot of the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapRecord {
    /// Slot index in the child's object space.
    pub slot: u64,
    /// The object in it.
    pub object: ObjRef,
    /// Rights: W 1, S 2, R 4, D 8.
    pub rights: u8,
    /// Object right 1 (for gates: the server interface).
    pub server: bool,
}

/// Where a thread was at the cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ThreadState {
    /// Running user code (or ready to).
    Running,
    /// Blocked in a kernel call (IPC receive, send, or a call to rtcr).
    /// The registers are rewound to the kernel entry: resuming re-issues it.
    InKernel,
    /// Never started.
    Dead,
    /// Blocked in a kernel call whose entry code is not l4-sys's
    /// restartable sequence (L4Re's own, or any code that follows the
    /// kernel ABI): the restore issues the call `dest`|flags with the
    /// timeout pair `timeout` (relative timeouts as time left at the cut)
    /// from rtcr's call stub, and when it returns the thread goes on with
    /// `regs` (its IP after its own kernel entry, its own registers) and
    /// the call's results. (Format version 2.)
    InCall {
        /// The destination selector and operation bits (rdx / x2).
        dest: u64,
        /// The timeout pair (r8 / x3).
        timeout: u64,
    },
}

/// One thread of the child.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadRecord {
    /// UTCB address.
    pub utcb: u64,
    /// Priority.
    pub prio: u8,
    /// Quantum in µs (0 = default).
    pub quantum_us: u64,
    /// Pager slot (in the child's space).
    pub pager_slot: u64,
    /// Exception-handler slot.
    pub exc_slot: u64,
    /// The full register set in the architecture's exception layout
    /// (26 words on amd64, 40 on arm64).
    pub regs: Vec<u64>,
    /// The UTCB contents (128 words).
    pub utcb_words: Vec<u64>,
    /// Where it was.
    pub state: ThreadState,
    /// FPU/SIMD state, in the save format of the architecture the image
    /// was taken on (empty when none was captured).
    pub fpu: Vec<u8>,
    /// Absolute timeouts of the kernel call the thread was in, as time
    /// remaining: (buffer register that held the deadline, µs left). A
    /// restore writes `now + remaining` back, so a deadline means the same
    /// on another ECU's clock.
    pub timeouts: Vec<(u8, u64)>,
}

/// One page of the child's memory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRecord {
    /// Virtual address in the child.
    pub vaddr: u64,
    /// Rights: X 1, W 2, R 4.
    pub rights: u8,
    /// The page's bytes (page size of the image), or none for a page of
    /// zeros (format version 2: a zero page costs a few bytes, not a page).
    #[serde(with = "bytes")]
    pub data: Vec<u8>,
}

/// A [`Checkpoint`] as a restore reads it: the same encoding, its page bytes
/// borrowed from the image they were decoded from, so that they are read
/// once, into the frames, instead of first being copied into the heap one
/// allocation per page ([`crate::image::decode_borrowed_for`]). The fields
/// are [`Checkpoint`]'s, in its order, up to the pages (the placement that
/// follows from version 4 on is taken after it).
#[derive(Debug, Deserialize)]
struct CheckpointRef<'a> {
    child: String,
    clock_us: u64,
    utcb_area: (u64, u8),
    objects: Vec<ObjectRecord>,
    caps: Vec<CapRecord>,
    threads: Vec<ThreadRecord>,
    #[serde(borrow)]
    pages: Vec<PageRef<'a>>,
}

/// A [`PageRecord`] with its bytes borrowed.
#[derive(Debug, Deserialize)]
struct PageRef<'a> {
    vaddr: u64,
    rights: u8,
    #[serde(borrow)]
    data: &'a [u8],
}

/// The bytes of a checkpoint's pages, borrowed from its image, in the order
/// of [`Checkpoint::pages`] (none for a zero page).
pub type PageBytes<'a> = Vec<&'a [u8]>;

/// Decodes a checkpoint body with its page bytes borrowed from `body`:
/// the records (pages carry no bytes), the page bytes in the same order
/// (none for a zero page), and what follows the record in `body`.
pub(crate) fn take_borrowed(body: &[u8]) -> postcard::Result<(Checkpoint, PageBytes<'_>, &[u8])> {
    let (cp, rest) = postcard::take_from_bytes::<CheckpointRef<'_>>(body)?;
    let mut data = Vec::with_capacity(cp.pages.len());
    let pages = cp
        .pages
        .into_iter()
        .map(|p| {
            data.push(p.data);
            PageRecord { vaddr: p.vaddr, rights: p.rights, data: Vec::new() }
        })
        .collect();
    let cp = Checkpoint {
        child: cp.child,
        clock_us: cp.clock_us,
        utcb_area: cp.utcb_area,
        objects: cp.objects,
        caps: cp.caps,
        threads: cp.threads,
        pages,
        placement: Vec::new(),
    };
    Ok((cp, data, rest))
}

/// A page's bytes as one byte string (`serialize_bytes`), not a sequence
/// of single bytes: postcard writes both the same way (a varint length,
/// then the bytes), so images are unchanged, but a byte string is copied
/// whole where a sequence went through serde byte by byte (decoding a
/// 16 MiB image took ~50 ms that way on a desktop CPU, ~15 times a memcpy).
mod bytes {
    use alloc::vec::Vec;
    use core::fmt;
    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(data)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        d.deserialize_byte_buf(Bytes)
    }

    struct Bytes;

    impl<'de> Visitor<'de> for Bytes {
        type Value = Vec<u8>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a page's bytes")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }

        // formats without byte strings give a sequence
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }
}

impl PageRecord {
    /// A record of `data` at `vaddr`: an all-zero page is stored as no bytes.
    pub fn new(vaddr: u64, rights: u8, data: &[u8]) -> Self {
        let data = if data.iter().all(|&b| b == 0) { Vec::new() } else { data.to_vec() };
        PageRecord { vaddr, rights, data }
    }

    /// The page's bytes, `page_size` of them (zeros for a zero page).
    pub fn bytes(&self, page_size: usize) -> alloc::borrow::Cow<'_, [u8]> {
        if self.data.is_empty() {
            alloc::borrow::Cow::Owned(alloc::vec![0; page_size])
        } else {
            alloc::borrow::Cow::Borrowed(&self.data)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PageRecord;
    use alloc::vec::Vec;
    use serde::{Deserialize, Serialize};

    /// A page record as it was serialized before (its bytes a sequence).
    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct AsSequence {
        vaddr: u64,
        rights: u8,
        data: Vec<u8>,
    }

    #[test]
    fn page_bytes_are_written_and_read_as_before() {
        for data in [Vec::new(), (0..4096u32).map(|i| (i * 7) as u8).collect::<Vec<u8>>()] {
            let page = PageRecord { vaddr: 0x5000_1000, rights: 6, data: data.clone() };
            let old = AsSequence { vaddr: 0x5000_1000, rights: 6, data };
            let new_bytes = postcard::to_allocvec(&page).unwrap();
            let old_bytes = postcard::to_allocvec(&old).unwrap();
            assert_eq!(new_bytes, old_bytes, "the image format is unchanged");
            assert_eq!(postcard::from_bytes::<PageRecord>(&old_bytes).unwrap(), page);
            assert_eq!(postcard::from_bytes::<AsSequence>(&new_bytes).unwrap(), old);
        }
    }
}

//! rtcr's heap: RAM from sigma0, handed to `linked_list_allocator`.
//!
//! rtcr-core and rtcr-image allocate (records, images, the online state), so
//! the root task needs a global allocator before it can run them. The heap
//! lives at a fixed virtual address of rtcr's own, away from its image and
//! from the probes' addresses, and is filled with "any RAM"
//! from sigma0 (which hands out what it has; nothing is assumed about the
//! physical layout), in blocks of up to 4 MiB.

use l4_sys::arch::CurrentThread;
use l4_sys::cap::{base, Cap};
use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::{sigma0, Kernel};
use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Where the heap starts (virtual; no RAM or device there on either platform).
pub const HEAP_VA: u64 = 0x30_0000_0000;

/// Maps `pages` pages of RAM from sigma0 at [`HEAP_VA`] and makes them the
/// heap. Returns how many pages it got (fewer if sigma0 ran out; the heap
/// is then that much smaller), or the error of the first request.
pub fn init(k: &mut CurrentThread, pages: u64) -> Result<u64, l4_sys::Error> {
    let (got, err) = map_any_ram(k, HEAP_VA, pages * 4096);
    match err {
        Some(e) if got == 0 => return Err(e),
        _ => {}
    }
    // SAFETY: [HEAP_VA, HEAP_VA + got) was just mapped read-write into this
    // task by sigma0, nothing else uses that range, and `init` runs once,
    // before the first allocation.
    unsafe { HEAP.lock().init(HEAP_VA as *mut u8, got as usize) };
    Ok(got / 4096)
}

/// The largest block rtcr asks sigma0 for at once: 4 MiB. The heap took
/// 4096 requests of a page each before, about 200 ms of the boot on QEMU;
/// now it takes four.
const MAX_ORDER: u32 = 22;

/// Maps `len` bytes of any RAM from sigma0 at `va` (both page-aligned), in
/// blocks as large as alignment allows. Returns the bytes mapped from `va`
/// on, and the error that stopped it short of `len`.
pub fn map_any_ram<K: Kernel>(k: &mut K, va: u64, len: u64) -> (u64, Option<l4_sys::Error>) {
    map_blocks(va, len, |order, at| {
        sigma0::map_any(k, Cap::new(base::PAGER), order, Fpage::mem(at, order, MemRights::empty())).map(|_| ())
    })
}

/// Covers `[va, va + len)` (page-aligned) by `map(order, address)` calls for
/// naturally aligned blocks of at most 2^[`MAX_ORDER`] bytes, each as large
/// as the alignment and the rest allow. A refused block is asked for again
/// smaller (sigma0 may have no free block that large), down to one page;
/// a refused page ends it. Returns the bytes covered and that page's error.
pub fn map_blocks(
    va: u64,
    len: u64,
    mut map: impl FnMut(u32, u64) -> Result<(), l4_sys::Error>,
) -> (u64, Option<l4_sys::Error>) {
    let mut done = 0;
    let mut max = MAX_ORDER;
    while done < len {
        let at = va + done;
        let mut order = max;
        while order > 12 && (at & ((1 << order) - 1) != 0 || len - done < 1 << order) {
            order -= 1;
        }
        match map(order, at) {
            Ok(()) => done += 1 << order,
            Err(_) if order > 12 => max = order - 1,
            Err(e) => return (done, Some(e)),
        }
    }
    (done, None)
}

/// Bytes the heap has free now.
pub fn free() -> usize {
    HEAP.lock().free()
}

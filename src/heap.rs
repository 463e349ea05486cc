//! rtcr's heap: RAM from sigma0, handed to `linked_list_allocator`.
//!
//! rtcr-core and rtcr-image allocate (records, images, the online state), so
//! the root task needs a global allocator before it can run them. The heap
//! lives at a fixed virtual address of rtcr's own, away from its image and
//! from the probes' addresses, and is filled with "any RAM"
//! from sigma0 (which hands out what it has; nothing is assumed about the
//! physical layout), in blocks of up to 4 MiB.

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use l4_sys::arch::CurrentThread;
use l4_sys::cap::{base, Cap};
use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::{sigma0, Kernel};
use linked_list_allocator::LockedHeap;

static HEAP: LockedHeap = LockedHeap::empty();

#[global_allocator]
static COUNTED: Counted = Counted;

/// Bytes allocated now, and the most at once since [`take_peak`] (rtcr's
/// own memory per child page, which the benchmark reports).
static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The heap, counting what is allocated (rtcr runs one thread: relaxed
/// counters suffice).
struct Counted;

// SAFETY: every call is passed on unchanged to the LockedHeap, which is a
// GlobalAlloc; the counters do not touch the memory.
unsafe impl GlobalAlloc for Counted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds alloc's contract, passed on as is.
        let p = unsafe { HEAP.alloc(layout) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds dealloc's contract (ptr came from alloc
        // above with this layout), passed on as is.
        unsafe { HEAP.dealloc(ptr, layout) };
        IN_USE.fetch_sub(layout.size(), Relaxed);
    }
}

/// The most bytes the heap held at once since the last call (or the
/// start), and the count starts again from what it holds now.
pub fn take_peak() -> usize {
    PEAK.swap(IN_USE.load(Relaxed), Relaxed)
}

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

/// Bytes of the heap in use now.
pub fn used() -> usize {
    HEAP.lock().used()
}

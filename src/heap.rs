//! rtcr's heap: RAM from sigma0, handed to `linked_list_allocator`.
//!
//! rtcr-core and rtcr-image allocate (records, images, the online state), so
//! the root task needs a global allocator before it can run them. The heap
//! lives at a fixed virtual address of rtcr's own, away from its image and
//! from the probes' addresses, and is filled page by page with "any RAM"
//! from sigma0 (which hands out what it has; nothing is assumed about the
//! physical layout).

use l4_sys::arch::CurrentThread;
use l4_sys::cap::{base, Cap};
use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::sigma0;
use linked_list_allocator::LockedHeap;

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

/// Where the heap starts (virtual; no RAM or device there on either platform).
pub const HEAP_VA: u64 = 0x30_0000_0000;

/// Maps `pages` pages of RAM from sigma0 at [`HEAP_VA`] and makes them the
/// heap. Returns how many pages it got (fewer if sigma0 ran out; the heap
/// is then that much smaller), or the error of the first request.
pub fn init(k: &mut CurrentThread, pages: u64) -> Result<u64, l4_sys::Error> {
    let mut got = 0;
    for i in 0..pages {
        let window = Fpage::mem(HEAP_VA + i * 4096, 12, MemRights::empty());
        match sigma0::map_any(k, Cap::new(base::PAGER), 12, window) {
            Ok(_) => got += 1,
            Err(e) if got == 0 => return Err(e),
            Err(_) => break,
        }
    }
    // SAFETY: [HEAP_VA, HEAP_VA + got pages) was just mapped read-write
    // into this task by sigma0, nothing else uses that range, and `init`
    // runs once, before the first allocation.
    unsafe { HEAP.lock().init(HEAP_VA as *mut u8, (got * 4096) as usize) };
    Ok(got)
}

/// Bytes the heap has free now.
pub fn free() -> usize {
    HEAP.lock().free()
}

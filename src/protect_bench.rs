//! `bench`: what write-protecting the dirty set would cost if a child's
//! memory were mapped in 2 MiB superpages instead of 4 KiB pages (issue 12).
//!
//! A checkpoint takes W from the pages written since the last one in a few
//! large fpages, one kernel call (rtcr-core's checkpoint, `protect_us` of
//! the benchmark), but the kernel revokes mapping by mapping, and a child's
//! memory is mapped in 4 KiB pages. This measures the same call over the
//! same 16 MiB (4096 pages) mapped both ways into a scratch task, once per
//! boot before the child starts, so the note on the issue can put the
//! figure next to the checkpoints of the same boot:
//!
//! 1. 16 MiB of RAM from sigma0 in 2 MiB blocks at a 2 MiB aligned address
//!    of rtcr's own, so the kernel maps them into rtcr as superpages (the
//!    order of each of sigma0's answers is logged);
//! 2. the 16 MiB mapped (a) page by page, as rtcr maps a child's pages,
//!    and (b) as 2 MiB fpages; and 16 pages of it as 4 KiB pages, and once
//!    more as one 2 MiB fpage, for the small end; into two spaces:
//!    - a scratch task, which never runs;
//!    - rtcr's own task, at addresses of its own nothing else uses (aliases
//!      of the 16 MiB): a task that runs, as the child does. On arm64 this
//!      is the figure that carries over: the kernel invalidates the TLB
//!      entries of the space's ASID for every page whose rights it takes
//!      (`Mem_space::v_delete`), and a task that never ran has no ASID, so
//!      the scratch task's 4 KiB figure leaves that out;
//! 3. per repetition, fresh mappings with W, then the unmap of W alone (R
//!    stays) over each range in ONE call, as the checkpoint issues it (the
//!    mapping task, `unmap_mask::ALL_SPACES`, `MemRights::W`), timed on the
//!    stamp counter; everything is unmapped again before the next one, so
//!    each repetition starts from mappings that surely have W;
//! 4. the scratch task is deleted, rtcr's aliases unmapped. The 16 MiB stay
//!    mapped in rtcr and are used for nothing else (sigma0 takes nothing
//!    back); the heap, the store, the memcpy scratch and the child's frames
//!    lie elsewhere and were mapped before (the child's frames come later,
//!    page by page).
//!
//! One more fact of the kernel's unmap (`unmap` in map_util.cpp): with
//! `ALL_SPACES` it takes the rights from the whole page that holds an
//! address of the fpage, so W off 16 pages inside a 2 MiB mapping is W off
//! all 512 of them (`small_in_2m_ns` times that call).

use l4_sys::cap::{base, kind, Cap, CapIdx};
use l4_sys::fpage::{Fpage, MemRights};
use l4_sys::item::{Cache, SendItem};
use l4_sys::task::{self, unmap_mask};
use l4_sys::{factory, sigma0};
use rtcr_core::Env;

use crate::env::KernelEnv;
use crate::logger::log;

/// rtcr's own address of the 16 MiB (16 MiB aligned; between the heap at
/// 0x30_0000_0000 and the probes' addresses, no RAM or device there).
const RTCR_VA: u64 = 0x28_0000_0000;
const PAGES: u64 = 4096;
const SUPER_ORDER: u32 = 21;
const RANGE_ORDER: u32 = 24;
/// The pages of the small range (the benchmark's D = 16).
const SMALL_PAGES: u64 = 16;
const SMALL_ORDER: u32 = 16;
/// The scratch task's slot in rtcr (below the fast path's 0xf0, above the
/// probes' 0x20-0x22; `bench` runs neither probe).
const SCRATCH: Cap<kind::Task> = Cap::new(CapIdx(0xe0));
const SCRATCH_UTCB: u64 = 0xB300_0000;
/// The ranges of one space: the 16 MiB as 4 KiB pages and as 2 MiB pages,
/// 16 pages as 4 KiB pages, one 2 MiB page holding 16 pages (each 16 MiB
/// aligned, 16 MiB apart).
struct Space {
    task: Cap<kind::Task>,
    ranges: [u64; 4],
}

const IN_SCRATCH: Space = Space { task: SCRATCH, ranges: [0x1000_0000, 0x2000_0000, 0x3000_0000, 0x4000_0000] };
/// In rtcr: above the 16 MiB, below the heap (nothing of rtcr's there).
const IN_RTCR: Space = Space { task: ME, ranges: [0x2A_0000_0000, 0x2B_0000_0000, 0x2C_0000_0000, 0x2D_0000_0000] };
const REPS: usize = 7;

const ME: Cap<kind::Task> = Cap::new(base::TASK);

/// Takes the figures and logs them (one `rtcr: bench: protect` line), or
/// says why not; rtcr goes on either way.
pub fn run(env: &mut KernelEnv) {
    let orders = match map_superpages(env) {
        Ok(o) => o,
        Err(e) => {
            log!(env, "rtcr: bench: protect figures not taken: sigma0: {}", defmt::Display2Format(&e));
            return;
        }
    };
    log!(
        env,
        "rtcr: bench: 16 MiB from sigma0 in 2 MiB requests at {=u64:#x}: orders sent {=[?]}",
        RTCR_VA,
        &orders[..]
    );
    let made = factory::create_task(
        env,
        Cap::new(base::FACTORY),
        SCRATCH.idx(),
        Fpage::mem(SCRATCH_UTCB, 12, MemRights::empty()),
    );
    if let Err(e) = made {
        log!(env, "rtcr: bench: protect figures not taken: scratch task: {}", defmt::Display2Format(&e));
        return;
    }
    let scratch = measure(env, &IN_SCRATCH);
    if let Err(e) = task::delete_obj(env, ME, SCRATCH.idx()) {
        log!(env, "rtcr: bench: the scratch task was not deleted: {}", defmt::Display2Format(&e));
    }
    let own = measure(env, &IN_RTCR);
    if own.is_err() {
        // whatever of the aliases is left (each range was unmapped whole
        // after every repetition that completed)
        for at in IN_RTCR.ranges {
            let _ = task::unmap(env, ME, Fpage::mem(at, RANGE_ORDER, MemRights::RWX), unmap_mask::ALL_SPACES);
        }
    }
    match (scratch, own) {
        (Ok(s), Ok(t)) => log!(
            env,
            "rtcr: bench: protect W of {=u64} pages: as_4k_ns {=u64} as_2m_ns {=u64} small_pages {=u64} small_4k_ns \
             {=u64} small_in_2m_ns {=u64} reps {=usize} first_4k_ns {=u64} first_2m_ns {=u64} super_order {=u32} \
             scratch_4k_ns {=u64} scratch_2m_ns {=u64} scratch_small_4k_ns {=u64} scratch_small_in_2m_ns {=u64}",
            PAGES,
            t.median[0],
            t.median[1],
            SMALL_PAGES,
            t.median[2],
            t.median[3],
            REPS,
            t.first[0],
            t.first[1],
            orders.iter().copied().min().unwrap_or(0),
            s.median[0],
            s.median[1],
            s.median[2],
            s.median[3]
        ),
        (Err(e), _) | (_, Err(e)) => {
            log!(env, "rtcr: bench: protect figures not taken: {}", defmt::Display2Format(&e))
        }
    }
}

/// Asks sigma0 for the 16 MiB as 2 MiB blocks, each into a 2 MiB window
/// at [`RTCR_VA`]; returns the order of each fpage sigma0 sent.
fn map_superpages(env: &mut KernelEnv) -> Result<[u32; 8], l4_sys::Error> {
    let mut orders = [0u32; 8];
    for (i, o) in orders.iter_mut().enumerate() {
        let at = RTCR_VA + ((i as u64) << SUPER_ORDER);
        let window = Fpage::mem(at, SUPER_ORDER, MemRights::empty());
        let (_, sent) = sigma0::map_any_item(env, Cap::new(base::PAGER), SUPER_ORDER, window)?;
        *o = sent.order();
    }
    Ok(orders)
}

/// The medians and the first of the repetitions, in ns: the 16 MiB as 4 KiB
/// pages, as 2 MiB pages; 16 pages as 4 KiB pages, inside a 2 MiB page.
struct Taken {
    median: [u64; 4],
    first: [u64; 4],
}

fn measure(env: &mut KernelEnv, sp: &Space) -> Result<Taken, l4_sys::Error> {
    // per repetition, per range
    let mut ns = [[0u64; 4]; REPS];
    let [as_4k, as_2m, small_4k, small_2m] = sp.ranges;
    let orders = [RANGE_ORDER, RANGE_ORDER, SMALL_ORDER, SMALL_ORDER];
    for row in ns.iter_mut() {
        // fresh mappings, all with W
        for p in 0..PAGES {
            map(env, sp.task, as_4k + p * 4096, RTCR_VA + p * 4096, 12)?;
        }
        for s in 0..(PAGES >> (SUPER_ORDER - 12)) {
            map(env, sp.task, as_2m + (s << SUPER_ORDER), RTCR_VA + (s << SUPER_ORDER), SUPER_ORDER)?;
        }
        for p in 0..SMALL_PAGES {
            map(env, sp.task, small_4k + p * 4096, RTCR_VA + p * 4096, 12)?;
        }
        map(env, sp.task, small_2m, RTCR_VA, SUPER_ORDER)?;
        // W off each range in one call, as a checkpoint takes it
        for (i, (&at, &order)) in sp.ranges.iter().zip(&orders).enumerate() {
            let from = env.stamp_now();
            task::unmap(env, sp.task, Fpage::mem(at, order, MemRights::W), unmap_mask::ALL_SPACES)?;
            let ticks = env.stamp_now().wrapping_sub(from);
            row[i] = env.ticks_ns(ticks);
        }
        // and everything off, so the next repetition maps afresh
        for at in sp.ranges {
            task::unmap(env, sp.task, Fpage::mem(at, RANGE_ORDER, MemRights::RWX), unmap_mask::ALL_SPACES)?;
        }
    }
    let mut t = Taken { median: [0; 4], first: ns[0] };
    for (i, m) in t.median.iter_mut().enumerate() {
        let mut col = ns.map(|row| row[i]);
        col.sort_unstable();
        *m = col[REPS / 2];
    }
    Ok(t)
}

/// Maps 2^order bytes of rtcr's at `src` into `task` at `dst`, RW.
fn map(env: &mut KernelEnv, task: Cap<kind::Task>, dst: u64, src: u64, order: u32) -> Result<(), l4_sys::Error> {
    let item = SendItem::map_mem(dst, Fpage::mem(src, order, MemRights::RW), Cache::Keep, false);
    task::map(env, task, ME, item)
}

//! The child's virtual address space as rtcr lays it out: part of the child
//! contract (README "Writing a child"). A child's ELF segments must lie in
//! [`CHILD_RANGE`]; everything else here is rtcr's to place and the child
//! must leave free.

/// Where a child's ELF segments may lie (start, end exclusive).
pub const CHILD_RANGE: (u64, u64) = (0x1_0000, 0x6000_0000);
/// Where RAM the child asks its pager for ("any RAM", the sigma0 protocol)
/// is mapped: (start, length). The reply names the address, as sigma0's
/// does for a root task.
pub const SIGMA0_RANGE: (u64, u64) = (0x6000_0000, 0x0f00_0000);
/// Top of the 1 MiB demand-zero stack rtcr gives the first thread (the
/// stack pointer it starts with; a root-task-style child sets its own).
pub const STACK_TOP: u64 = 0x7000_0000;
/// Size of that stack.
pub const STACK_SIZE: u64 = 0x10_0000;
/// rtcr's exchange pages in the child (one per thread, read-write).
pub const SHARED: u64 = 0x7e00_0000;
/// rtcr's trampoline in the child (one page, read + execute).
pub const TRAMPOLINE: u64 = 0x7f00_0000;
/// The UTCB area: the first thread's UTCB is here, thread k's at
/// `UTCB_AREA + 0x400 * k`.
pub const UTCB_AREA: u64 = 0xB300_0000;
/// Bytes of UTCB area per thread.
pub const UTCB_STRIDE: u64 = 0x400;

/// Most threads the exchange area has room for.
pub const MAX_THREADS: u32 = ((TRAMPOLINE - SHARED) / 4096) as u32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_areas_do_not_overlap() {
        let areas = [
            CHILD_RANGE,
            (SIGMA0_RANGE.0, SIGMA0_RANGE.0 + SIGMA0_RANGE.1),
            (STACK_TOP - STACK_SIZE, STACK_TOP),
            (SHARED, TRAMPOLINE),
            (TRAMPOLINE, TRAMPOLINE + 4096),
            (UTCB_AREA, UTCB_AREA + UTCB_STRIDE * MAX_THREADS as u64),
        ];
        for (i, a) in areas.iter().enumerate() {
            assert!(a.0 < a.1 && a.0 % 4096 == 0 && a.1 % 4096 == 0, "{a:x?}");
            for b in &areas[i + 1..] {
                assert!(a.1 <= b.0 || b.1 <= a.0, "{a:x?} overlaps {b:x?}");
            }
        }
    }
}

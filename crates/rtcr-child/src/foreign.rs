//! What the foreign-entry child (`src/bin/rtcr-foreign.rs`) checks, as pure
//! functions, so that its verdicts are host-tested rather than trusted.
//!
//! The child is written the way a program built on L4Re's `l4sys` is: its
//! kernel entries are not l4-sys's restartable sequence. Under rtcr it is the
//! test of issue 10 ("transparency to code rtcr did not write"), so each
//! verdict here is one of the things such a program would notice if rtcr
//! were not transparent: a gate call that arrives twice or not at all, an
//! IRQ trigger delivered twice or lost, a sleep that ends early, memory
//! that does not hold what was written.

use core::fmt;

/// The length of each of the sleeper's sleeps (µs): a receive with this
/// relative timeout, as `l4_ipc_sleep` makes it.
pub const SLEEP_US: u64 = 20_000;
/// How much longer than [`SLEEP_US`] a sleep may take before it counts as
/// late (µs). Late is reported, not an error: on a loaded emulator a thread
/// may wait for the CPU; ending early is never right.
pub const LATE_SLACK_US: u64 = 15_000;

/// The labels of the three IPC gates, all bound to the entrypoint thread.
pub const GATE_LABELS: [u64; 3] = [0x100, 0x200, 0x300];
/// The labels of the three software IRQs, all bound to the IRQ waiter.
pub const IRQ_LABELS: [u64; 3] = [0x1010, 0x1020, 0x1030];
/// The server answers call `n` with `n + REPLY_OFFSET`.
pub const REPLY_OFFSET: u64 = 1000;

/// The index of `label` (rights bits 0–1 masked, as the kernel ORs the
/// sender capability's W/S rights into a gate label) in `labels`.
pub fn index_of(labels: &[u64], label: u64) -> Option<usize> {
    labels.iter().position(|&l| l == label & !3)
}

/// How one sleep of [`SLEEP_US`] went, by the kernel clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sleep {
    /// It ended before its timeout: a cancelled or cut-short receive.
    Early,
    /// Within [`LATE_SLACK_US`] after its timeout.
    OnTime,
    /// More than [`LATE_SLACK_US`] after its timeout.
    Late,
}

impl Sleep {
    /// Classifies a sleep that took `elapsed_us` by the kernel clock.
    pub const fn of(elapsed_us: u64) -> Self {
        if elapsed_us < SLEEP_US {
            Sleep::Early
        } else if elapsed_us > SLEEP_US + LATE_SLACK_US {
            Sleep::Late
        } else {
            Sleep::OnTime
        }
    }
}

/// What a gate's sequence number says about exactly-once delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seq {
    /// `n == last + 1`: the next call, as it must be.
    Next,
    /// `n <= last`: a call arrived again (or out of order).
    Repeated,
    /// `n > last + 1`: calls in between never arrived.
    Skipped,
}

impl Seq {
    /// Judges call `n` after the server last saw `last`.
    pub const fn of(last: u64, n: u64) -> Self {
        if n == last.wrapping_add(1) {
            Seq::Next
        } else if n <= last {
            Seq::Repeated
        } else {
            Seq::Skipped
        }
    }
}

/// Where an IRQ stands, from the client's count of triggers sent and the
/// waiter's count of deliveries. The client triggers again only once the
/// last trigger was delivered, so a merge of two triggers (which the kernel
/// does for a busy receiver) cannot hide a lost one: every trigger must be
/// delivered, at most one is ever outstanding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IrqState {
    /// Every trigger was delivered: the client may trigger again.
    Delivered,
    /// One trigger is on its way.
    Outstanding,
    /// Counts the protocol cannot produce: more deliveries than triggers
    /// (one delivered twice), or more than one outstanding.
    Broken,
}

impl IrqState {
    /// The state for `sent` triggers and `received` deliveries.
    pub const fn of(sent: u64, received: u64) -> Self {
        if sent == received {
            IrqState::Delivered
        } else if sent == received.wrapping_add(1) {
            IrqState::Outstanding
        } else {
            IrqState::Broken
        }
    }

    /// Whether one more delivery, after `received` of `sent`, is one the
    /// client triggered (not a second delivery of the same trigger).
    pub const fn delivery_expected(sent: u64, received: u64) -> bool {
        received < sent
    }
}

/// The ledger's word at address `addr` in round `round`: a mix of both
/// (splitmix64's finaliser), so a page that lands elsewhere, a stale page
/// from an older round and a zeroed page all fail the check.
pub const fn pattern(addr: u64, round: u64) -> u64 {
    let mut z = addr ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Fills `words`, which lie at address `base`, with round `round`'s pattern.
pub fn fill(words: &mut [u64], base: u64, round: u64) {
    for (i, w) in words.iter_mut().enumerate() {
        *w = pattern(base + 8 * i as u64, round);
    }
}

/// A ledger page that does not hold its round's pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The address of the first wrong word.
    pub addr: u64,
    /// What it should hold.
    pub want: u64,
    /// What it holds.
    pub got: u64,
    /// How many words of the page are wrong.
    pub count: usize,
}

/// Checks that `words`, at address `base`, hold round `round`'s pattern.
pub fn check(words: &[u64], base: u64, round: u64) -> Option<Mismatch> {
    let mut first: Option<Mismatch> = None;
    let mut count = 0;
    for (i, &got) in words.iter().enumerate() {
        let addr = base + 8 * i as u64;
        let want = pattern(addr, round);
        if got != want {
            count += 1;
            first.get_or_insert(Mismatch { addr, want, got, count: 0 });
        }
    }
    first.map(|m| Mismatch { count, ..m })
}

/// The child's periodic status line (after `foreign: `), which
/// `tests/qemu.rs` reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// Ledger rounds (one per report).
    pub round: u64,
    /// Gate calls answered correctly.
    pub calls: u64,
    /// IRQ deliveries.
    pub irqs: u64,
    /// Sleeps finished.
    pub sleeps: u64,
    /// Sleeps that ended early.
    pub early: u64,
    /// Sleeps that ended late.
    pub late: u64,
    /// Unexpected results (each one also an `ERROR` line, while the
    /// per-round budget of lines lasts).
    pub errors: u64,
    /// Whether every ledger check so far passed.
    pub ledger_ok: bool,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "round {} calls {} irqs {} sleeps {} early {} late {} errors {} ledger {}",
            self.round,
            self.calls,
            self.irqs,
            self.sleeps,
            self.early,
            self.late,
            self.errors,
            if self.ledger_ok { "ok" } else { "BAD" }
        )
    }
}

impl Status {
    /// The status in a log line (the text after `<name>: ` that
    /// [`fmt::Display`] writes, anywhere in `line` after `"<name>: "`): the
    /// one reader of the format, for the QEMU checks. The C child prints
    /// the same line.
    pub fn parse(name: &str, line: &str) -> Option<Self> {
        let rest = line.match_indices(name).find_map(|(at, _)| line[at + name.len()..].strip_prefix(": round "))?;
        let mut words = rest.split_ascii_whitespace();
        let mut next_num = |key: Option<&str>| -> Option<u64> {
            if let Some(k) = key {
                if words.next()? != k {
                    return None;
                }
            }
            words.next()?.parse().ok()
        };
        let round = next_num(None)?;
        let calls = next_num(Some("calls"))?;
        let irqs = next_num(Some("irqs"))?;
        let sleeps = next_num(Some("sleeps"))?;
        let early = next_num(Some("early"))?;
        let late = next_num(Some("late"))?;
        let errors = next_num(Some("errors"))?;
        let ledger_ok = match (words.next(), words.next()) {
            (Some("ledger"), Some("ok")) => true,
            (Some("ledger"), Some(_)) => false,
            _ => return None,
        };
        Some(Status { round, calls, irqs, sleeps, early, late, errors, ledger_ok })
    }

    /// Every counter of `self` at least `other`'s.
    pub fn covers(&self, other: &Self) -> bool {
        self.round >= other.round && self.calls >= other.calls && self.irqs >= other.irqs && self.sleeps >= other.sleeps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_are_early_on_time_or_late() {
        assert_eq!(Sleep::of(0), Sleep::Early);
        assert_eq!(Sleep::of(19_999), Sleep::Early);
        assert_eq!(Sleep::of(20_000), Sleep::OnTime);
        assert_eq!(Sleep::of(35_000), Sleep::OnTime);
        assert_eq!(Sleep::of(35_001), Sleep::Late);
    }

    #[test]
    fn sequence_numbers_must_come_exactly_once_in_order() {
        assert_eq!(Seq::of(0, 1), Seq::Next);
        assert_eq!(Seq::of(41, 42), Seq::Next);
        assert_eq!(Seq::of(42, 42), Seq::Repeated);
        assert_eq!(Seq::of(42, 7), Seq::Repeated);
        assert_eq!(Seq::of(42, 44), Seq::Skipped);
    }

    #[test]
    fn irq_counts_allow_one_outstanding_trigger_only() {
        assert_eq!(IrqState::of(0, 0), IrqState::Delivered);
        assert_eq!(IrqState::of(5, 4), IrqState::Outstanding);
        assert_eq!(IrqState::of(6, 4), IrqState::Broken);
        assert_eq!(IrqState::of(4, 5), IrqState::Broken);
        assert!(IrqState::delivery_expected(5, 4));
        assert!(!IrqState::delivery_expected(5, 5));
    }

    #[test]
    fn labels_are_found_with_the_rights_bits_masked() {
        assert_eq!(index_of(&GATE_LABELS, 0x203), Some(1));
        assert_eq!(index_of(&IRQ_LABELS, 0x1030), Some(2));
        assert_eq!(index_of(&IRQ_LABELS, 0x1040), None);
    }

    #[test]
    fn the_ledger_pattern_depends_on_address_and_round() {
        let mut page = [0u64; 512];
        fill(&mut page, 0x0181_0000, 7);
        assert_eq!(check(&page, 0x0181_0000, 7), None);
        // a page that landed elsewhere, a stale round, a zeroed page
        assert_eq!(check(&page, 0x6000_0000, 7).map(|m| m.count), Some(512));
        assert_eq!(check(&page, 0x0181_0000, 8).map(|m| m.count), Some(512));
        assert_eq!(check(&[0u64; 512], 0x0181_0000, 7).map(|m| m.addr), Some(0x0181_0000));
        // one wrong word is found and named
        page[100] ^= 1;
        let m = check(&page, 0x0181_0000, 7).unwrap();
        assert_eq!((m.addr, m.count, m.got ^ m.want), (0x0181_0000 + 800, 1, 1));
    }

    #[test]
    fn the_status_line_reads_as_the_qemu_test_expects() {
        let s = Status { round: 3, calls: 120, irqs: 90, sleeps: 70, early: 0, late: 1, errors: 0, ledger_ok: true };
        assert_eq!(std::format!("{s}"), "round 3 calls 120 irqs 90 sleeps 70 early 0 late 1 errors 0 ledger ok");
        let bad = Status { ledger_ok: false, ..s };
        assert!(std::format!("{bad}").ends_with("ledger BAD"));
    }

    #[test]
    fn the_status_line_reads_back() {
        let s = Status { round: 7, calls: 120, irqs: 119, sleeps: 70, early: 0, late: 3, errors: 1, ledger_ok: false };
        let line = std::format!("rtcr-foreign: foreign: {s}");
        assert_eq!(Status::parse("foreign", &line), Some(s));
        let ok = Status { ledger_ok: true, ..s };
        assert_eq!(Status::parse("c-child", &std::format!("rtcr-c-child: c-child: {ok}")), Some(ok));
        assert_eq!(Status::parse("foreign", "foreign: started"), None);
        assert_eq!(Status::parse("foreign", "foreign: round 1 calls x"), None);
    }
}

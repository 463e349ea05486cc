//! IPC timeouts: two 16-bit values in one register (`r8` / `x3`).
//!
//! From `l4sys/include/__timeout.h` (`l4_timeout_t`, `l4_timeout_rel`,
//! `l4_timeout_abs`) and the kernel's `src/abi/l4_types.cpp` (`L4_timeout`,
//! `L4_timeout_pair`, `microsecs_rel`): low half = receive, high half = send.
//! A relative timeout is `m · 2^e` µs (m in bits 0–9, e in 10–14); bit 15 makes
//! it absolute, with bits 0–5 naming a buffer register holding the deadline.

/// One 16-bit timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Timeout(pub u16);

impl Timeout {
    /// Wait forever (`L4_IPC_TIMEOUT_NEVER`).
    pub const NEVER: Timeout = Timeout(0);
    /// Do not wait (`L4_IPC_TIMEOUT_0`): e = 1, m = 0.
    pub const ZERO: Timeout = Timeout(0x0400);

    /// A relative timeout of `m · 2^e` µs. `m` is cut to 10 bits, `e` to 5.
    pub const fn rel(m: u16, e: u8) -> Self {
        let t = Timeout((m & 0x3ff) | ((e as u16 & 0x1f) << 10));
        if t.0 == 0 {
            // m = 0, e = 0 would read as "never"; a zero mantissa means zero.
            Timeout::ZERO
        } else {
            t
        }
    }

    /// The shortest relative timeout of at least `us` microseconds
    /// (`l4_timeout_from_us`): the mantissa is rounded up so it never fires
    /// early. Values above what 16 bits can say become [`Timeout::NEVER`].
    pub const fn from_us(us: u64) -> Self {
        if us == 0 {
            return Timeout::ZERO;
        }
        let mut e: u32 = 0;
        let mut m = us;
        while m > 0x3ff {
            // round up: ceil(m / 2)
            m = (m >> 1) + (m & 1);
            e += 1;
        }
        if e > 31 {
            return Timeout::NEVER;
        }
        Timeout::rel(m as u16, e as u8)
    }

    /// An absolute timeout whose deadline (kernel clock, µs) is in buffer
    /// register `br` (`l4_timeout_abs_u`, bit 15 set).
    pub const fn abs_in_br(br: u8) -> Self {
        Timeout(0x8000 | (br as u16 & 0x3f))
    }

    /// Is this "never"?
    pub const fn is_never(self) -> bool {
        self.0 == 0
    }

    /// Is this absolute?
    pub const fn is_absolute(self) -> bool {
        self.0 & 0x8000 != 0
    }

    /// The buffer register of an absolute timeout.
    pub const fn abs_br(self) -> Option<usize> {
        if self.is_absolute() {
            Some((self.0 & 0x3f) as usize)
        } else {
            None
        }
    }

    /// The length of a relative timeout in µs (`None` for never or absolute).
    /// Saturates at `u64::MAX`.
    pub const fn rel_us(self) -> Option<u64> {
        if self.is_never() || self.is_absolute() {
            return None;
        }
        let m = (self.0 & 0x3ff) as u64;
        let e = ((self.0 >> 10) & 0x1f) as u32;
        Some(m.saturating_mul(1u64 << e))
    }
}

/// A timeout pair (`l4_timeout_t`): send in the high half, receive in the low.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeoutPair {
    /// Timeout of the send phase.
    pub snd: Timeout,
    /// Timeout of the receive phase.
    pub rcv: Timeout,
}

impl TimeoutPair {
    /// Both never (`L4_IPC_NEVER`) = 0.
    pub const NEVER: TimeoutPair = TimeoutPair::new(Timeout::NEVER, Timeout::NEVER);
    /// Send never, receive zero (`L4_IPC_RECV_TIMEOUT_0`) = 0x0000_0400.
    pub const RECV_ZERO: TimeoutPair = TimeoutPair::new(Timeout::NEVER, Timeout::ZERO);
    /// Send zero, receive never (`L4_IPC_SEND_TIMEOUT_0`) = 0x0400_0000.
    pub const SEND_ZERO: TimeoutPair = TimeoutPair::new(Timeout::ZERO, Timeout::NEVER);
    /// Both zero (`L4_IPC_BOTH_TIMEOUT_0`) = 0x0400_0400.
    pub const BOTH_ZERO: TimeoutPair = TimeoutPair::new(Timeout::ZERO, Timeout::ZERO);

    /// `l4_timeout(snd, rcv)`.
    pub const fn new(snd: Timeout, rcv: Timeout) -> Self {
        TimeoutPair { snd, rcv }
    }

    /// The register value.
    pub const fn raw(self) -> u64 {
        ((self.snd.0 as u64) << 16) | self.rcv.0 as u64
    }

    /// Decodes a register value (the upper 32 bits are ignored, as by the kernel).
    pub const fn from_raw(raw: u64) -> Self {
        TimeoutPair { snd: Timeout((raw >> 16) as u16), rcv: Timeout(raw as u16) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_constants_match_header() {
        assert_eq!(TimeoutPair::NEVER.raw(), 0);
        assert_eq!(TimeoutPair::RECV_ZERO.raw(), 0x0000_0400);
        assert_eq!(TimeoutPair::SEND_ZERO.raw(), 0x0400_0000);
        assert_eq!(TimeoutPair::BOTH_ZERO.raw(), 0x0400_0400);
        let p = TimeoutPair::from_raw(0x1234_5678);
        assert_eq!((p.snd.0, p.rcv.0), (0x1234, 0x5678));
    }

    #[test]
    fn relative_values() {
        // m · 2^e µs
        assert_eq!(Timeout::rel(1000, 0).rel_us(), Some(1000));
        assert_eq!(Timeout::rel(1000, 10).rel_us(), Some(1000 << 10));
        assert_eq!(Timeout::rel(0, 0), Timeout::ZERO);
        assert_eq!(Timeout::ZERO.rel_us(), Some(0));
        assert_eq!(Timeout::NEVER.rel_us(), None);
    }

    #[test]
    fn from_us_never_fires_early_and_is_tight() {
        for us in [1u64, 999, 1023, 1024, 1025, 4097, 1_000_000, 123_456_789] {
            let t = Timeout::from_us(us);
            let got = t.rel_us().unwrap();
            assert!(got >= us, "{us} -> {got}");
            // at most one mantissa step too long
            let e = (t.0 >> 10) & 0x1f;
            assert!(got - us < (1u64 << e), "{us} -> {got}");
        }
        assert_eq!(Timeout::from_us(0), Timeout::ZERO);
        assert_eq!(Timeout::from_us(u64::MAX), Timeout::NEVER);
    }

    #[test]
    fn absolute_timeouts_name_a_buffer_register() {
        let t = Timeout::abs_in_br(5);
        assert_eq!(t.0, 0x8005);
        assert!(t.is_absolute());
        assert_eq!(t.abs_br(), Some(5));
        assert_eq!(t.rel_us(), None);
    }
}

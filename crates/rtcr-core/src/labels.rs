//! Gate labels: how rtcr tells which service, and for whom, a message is.
//!
//! Every gate rtcr serves is bound to rtcr's thread with a label
//! `index << 8 | service << 4` (bits 0–1 stay free for the W/S bits the
//! kernel adds, bits 2–3 are zero). `index` is the child thread a
//! per-thread gate belongs to (pager, exception, thread proxy) or the IRQ
//! object an IRQ proxy stands for.

pub use rtcr_image::record::Service;

/// Label of the gate for `service` and `index`.
pub const fn label(service: Service, index: u32) -> u64 {
    ((index as u64) << 8) | ((code(service) as u64) << 4)
}

const fn code(s: Service) -> u8 {
    match s {
        Service::Task => 1,
        Service::Factory => 2,
        Service::Thread => 3,
        Service::Pager => 4,
        Service::Log => 5,
        Service::Icu => 6,
        Service::Scheduler => 7,
        Service::Exception => 8,
        Service::Irq => 9,
        Service::Rm => 10,
        Service::MemAlloc => 11,
        Service::Dataspace => 12,
        Service::Namespace => 13,
        Service::Parent => 14,
    }
}

/// A service's name, for logs.
pub const fn name(s: Service) -> &'static str {
    match s {
        Service::Task => "its task",
        Service::Factory => "the factory",
        Service::Thread => "a thread",
        Service::Pager => "the pager",
        Service::Log => "the log",
        Service::Icu => "the ICU",
        Service::Scheduler => "the scheduler",
        Service::Exception => "the exception handler",
        Service::Irq => "an IRQ",
        Service::Rm => "the region map",
        Service::MemAlloc => "the memory allocator",
        Service::Dataspace => "a dataspace",
        Service::Namespace => "the namespace",
        Service::Parent => "the parent",
    }
}

/// Label of an IRQ proxy gate served by rtcr's IRQ fast path
/// ([`crate::fast_path`]): the object index as with [`label`], and above bit
/// 32 rtcr's slot of the real IRQ, so that the fast path can trigger it
/// without rtcr's records.
pub const fn irq_proxy_label(index: u32, real: l4_sys::cap::CapIdx) -> u64 {
    label(Service::Irq, index) | (real.0 << 32)
}

/// The real IRQ an [`irq_proxy_label`] names.
pub const fn irq_proxy_real(label: u64) -> l4_sys::cap::CapIdx {
    l4_sys::cap::CapIdx(label >> 32)
}

/// Label of the gate the IRQ fast path forwards what it does not do itself
/// to rtcr's main thread through (service code 15: no [`Service`]).
pub const FORWARD: u64 = 0xf << 4;

/// The service and index a received label names (the W/S bits ignored;
/// the index is 24 bits: above them an IRQ proxy label carries the real
/// IRQ's slot).
pub fn decode(label: u64) -> Option<(Service, u32)> {
    let s = match (label >> 4) & 0xf {
        1 => Service::Task,
        2 => Service::Factory,
        3 => Service::Thread,
        4 => Service::Pager,
        5 => Service::Log,
        6 => Service::Icu,
        7 => Service::Scheduler,
        8 => Service::Exception,
        9 => Service::Irq,
        10 => Service::Rm,
        11 => Service::MemAlloc,
        12 => Service::Dataspace,
        13 => Service::Namespace,
        14 => Service::Parent,
        _ => return None,
    };
    if label & 0xc != 0 {
        return None;
    }
    Some((s, ((label >> 8) & 0xff_ffff) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_keep_the_rights_bits_free() {
        for s in [
            Service::Task,
            Service::Factory,
            Service::Thread,
            Service::Pager,
            Service::Exception,
            Service::Irq,
            Service::Rm,
            Service::MemAlloc,
            Service::Dataspace,
            Service::Namespace,
            Service::Parent,
        ] {
            for i in [0u32, 1, 77, 0xffff] {
                let l = label(s, i);
                assert_eq!(l & 3, 0);
                assert_eq!(decode(l | 3), Some((s, i)));
            }
        }
        assert_eq!(decode(0), None);
        assert_eq!(decode(FORWARD), None);
        let l = irq_proxy_label(77, l4_sys::cap::CapIdx(0x1234));
        assert_eq!(l & 3, 0);
        assert_eq!(decode(l | 2), Some((Service::Irq, 77)));
        assert_eq!(irq_proxy_real(l | 2), l4_sys::cap::CapIdx(0x1234));
    }
}

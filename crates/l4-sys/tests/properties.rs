//! Property tests: every encoder and decoder of the ABI round-trips over
//! its whole input space (proptest).

use l4_sys::cap::CapIdx;
use l4_sys::error::IpcError;
use l4_sys::exc::Arch;
use l4_sys::fpage::{CapRights, Fpage, MemRights};
use l4_sys::item::{Bdr, RcvItem, SendItem};
use l4_sys::msgtag::{MsgTag, TagFlags};
use l4_sys::pagefault::PageFault;
use l4_sys::timeout::{Timeout, TimeoutPair};
use l4_sys::utcb::Utcb;
use proptest::prelude::*;

proptest! {
    #[test]
    fn msgtag_fields_round_trip(label in -(1i64 << 46)..(1i64 << 46), words in 0usize..64, items in 0usize..64, flags in 0u64..16) {
        let f = TagFlags::from_bits_truncate(flags << 12);
        let t = MsgTag::new(label, words, items, f);
        prop_assert_eq!((t.label(), t.words(), t.items(), t.flags()), (label, words, items, f));
    }

    #[test]
    fn any_tag_word_decodes_consistently(raw in any::<u64>()) {
        let t = MsgTag(raw);
        let back = MsgTag::new(t.label(), t.words(), t.items(), t.flags());
        prop_assert_eq!(back.0, raw);
    }

    #[test]
    fn memory_fpages_round_trip(page in 0u64..(1 << 40), order in 12u32..40, rights in 0u64..8) {
        let addr = (page << 12) & !((1u64 << order) - 1);
        let f = Fpage::mem(addr, order, MemRights::from_bits_truncate(rights));
        prop_assert_eq!((f.addr(), f.order(), f.rights()), (addr, order, rights));
    }

    #[test]
    fn object_fpages_round_trip(idx in 0u64..(1 << 40), rights in 0u64..16) {
        let f = Fpage::obj(CapIdx(idx), 0, CapRights::from_bits_truncate(rights));
        prop_assert_eq!(f.cap_idx(), CapIdx(idx));
        prop_assert_eq!(f.rights(), rights);
    }

    #[test]
    fn relative_timeouts_never_fire_early(us in 0u64..(1023u64 << 31)) {
        let t = Timeout::from_us(us);
        let got = t.rel_us().unwrap();
        prop_assert!(got >= us);
        let p = TimeoutPair::new(t, Timeout::from_us(us / 3));
        prop_assert_eq!(TimeoutPair::from_raw(p.raw()), p);
    }

    #[test]
    fn tcr_codes_round_trip(code in 0u64..0x20) {
        let e = IpcError::from_tcr(code);
        if !matches!(e.code, l4_sys::IpcErrorCode::Unknown(_)) {
            prop_assert_eq!(e.to_tcr(), code);
        }
    }

    #[test]
    fn utcb_words_round_trip(words in proptest::collection::vec(any::<u64>(), 128)) {
        let w: [u64; 128] = words.try_into().unwrap();
        prop_assert_eq!(Utcb::from_words(&w).to_words(), w);
    }

    #[test]
    fn send_items_keep_the_hot_spot(base in any::<u64>(), grant in any::<bool>()) {
        let it = SendItem::map_mem(base, Fpage::INVALID, l4_sys::item::Cache::Keep, grant);
        prop_assert_eq!(it.snd_base(), base & !0xfff);
        prop_assert_eq!(it.control & 2 != 0, grant);
        let r = RcvItem { control: it.control, data: 0 };
        prop_assert!(r.is_map());
    }

    #[test]
    fn bdr_fields_round_trip(mem in 0u8..32, io in 0u8..32, obj in 0u8..32) {
        let b = Bdr::new(mem, io, obj);
        prop_assert_eq!((b.mem(), b.io(), b.obj()), (mem as usize, io as usize, obj as usize));
    }

    #[test]
    fn page_fault_words_round_trip(addr in any::<u64>(), ip in any::<u64>(), bits in 0u64..8, arm in any::<bool>()) {
        let arch = if arm { Arch::Arm64 } else { Arch::Amd64 };
        let w0 = (addr & !7) | bits;
        let pf = PageFault::decode(arch, w0, ip);
        prop_assert_eq!(pf.encode_mr0(arch), w0);
        prop_assert_eq!(pf.ip, ip);
    }
}

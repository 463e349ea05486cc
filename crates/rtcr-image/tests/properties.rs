//! Property tests (proptest): any well-formed checkpoint round-trips
//! through the image format, and any image with one byte changed is refused.

use proptest::prelude::*;
use rtcr_image::image::Arch;
use rtcr_image::record::*;
use rtcr_image::{decode, encode, verify, ImageMeta};

fn thread(n: usize) -> impl Strategy<Value = ThreadRecord> {
    (
        any::<u64>(),
        1u8..255,
        proptest::collection::vec(any::<u64>(), n),
        proptest::collection::vec(any::<u64>(), 128),
        prop_oneof![
            Just(ThreadState::Running),
            Just(ThreadState::InKernel),
            Just(ThreadState::Dead),
            (any::<u64>(), any::<u64>()).prop_map(|(dest, timeout)| ThreadState::InCall { dest, timeout })
        ],
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec((0u8..58, any::<u64>()), 0..3),
    )
        .prop_map(|(utcb, prio, regs, utcb_words, state, fpu, timeouts)| ThreadRecord {
            utcb: utcb & !0x3ff,
            prio,
            quantum_us: 0,
            pager_slot: 4,
            exc_slot: 0xf00,
            regs,
            utcb_words,
            state,
            fpu,
            timeouts,
        })
}

fn checkpoint() -> impl Strategy<Value = Checkpoint> {
    (
        proptest::collection::vec(thread(26), 1..4),
        proptest::collection::vec((any::<u64>(), any::<bool>()), 0..6),
        proptest::collection::btree_set(1u64..0x1000, 0..12),
        proptest::collection::btree_set(0u64..0x10_0000, 0..5),
        any::<u8>(),
        "[a-z]{0,12}",
    )
        .prop_map(|(threads, gates, slots, vpns, seed, name)| {
            let mut objects: Vec<ObjectRecord> =
                (0..threads.len() as u32).map(|t| ObjectRecord::Thread { thread: t }).collect();
            for (label, bound) in gates {
                objects.push(ObjectRecord::Gate { label: label & !3, bound: bound.then_some(0) });
            }
            let caps = slots
                .iter()
                .enumerate()
                .map(|(i, &slot)| CapRecord { slot, object: (i % objects.len()) as u32, rights: 7, server: i % 2 == 0 })
                .collect();
            let pages = vpns
                .iter()
                .map(|&v| PageRecord {
                    vaddr: v << 12,
                    rights: 6,
                    data: (0..4096u32).map(|i| (i as u8) ^ seed).collect(),
                })
                .collect();
            Checkpoint {
                child: name,
                clock_us: 77,
                utcb_area: (0xB300_0000, 14),
                objects,
                caps,
                threads,
                pages,
                placement: vec![],
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn checkpoints_round_trip(cp in checkpoint(), seq in 1u64..1000) {
        let meta = ImageMeta { arch: Arch::Amd64, page_shift: 12, sequence: seq, clock_us: 77 };
        let bytes = encode(&meta, &cp).expect("encode");
        let (m2, cp2) = decode(&bytes).expect("decode");
        prop_assert_eq!(m2, meta);
        prop_assert_eq!(cp2, cp);
    }

    #[test]
    fn one_changed_byte_is_refused(cp in checkpoint(), at in any::<usize>(), x in 1u8..=255) {
        let meta = ImageMeta { arch: Arch::Amd64, page_shift: 12, sequence: 1, clock_us: 77 };
        let mut bytes = encode(&meta, &cp).expect("encode");
        let i = at % bytes.len();
        bytes[i] ^= x;
        prop_assert!(verify(&bytes).is_err(), "byte {} changed and still verified", i);
    }
}

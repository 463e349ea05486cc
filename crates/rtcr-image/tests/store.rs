//! The A/B store: where writes go, which image `latest` returns, and that no
//! torn write or corrupted slot ever loses the last good image.

mod common;

use common::{meta, realistic, small, Rng};
use rtcr_image::{
    encode, verify, Arch, ImageError, MemRegion, Region, RegionError, Slot, SlotStatus, Store, StoreError,
    TearingRegion,
};

fn image(seq: u64) -> Vec<u8> {
    let m = meta(Arch::Amd64, 12, seq);
    encode(&m, &small(&m)).unwrap()
}

fn big_image(seq: u64) -> Vec<u8> {
    let m = meta(Arch::Amd64, 12, seq);
    encode(&m, &realistic(&m)).unwrap()
}

fn seq_of(image: &[u8]) -> u64 {
    verify(image).unwrap().sequence
}

#[test]
fn a_fresh_store_is_empty() {
    let s = Store::new(MemRegion::zeroed(4096));
    assert_eq!(s.status(), [SlotStatus::Empty, SlotStatus::Empty]);
    assert_eq!(s.latest(), Err(StoreError::Empty));
    assert_eq!(s.slot_len(), 2048);
}

#[test]
fn writes_alternate_a_b_a() {
    let mut s = Store::new(MemRegion::zeroed(4096));
    for (seq, slot) in [(1, Slot::A), (2, Slot::B), (3, Slot::A), (4, Slot::B)] {
        assert_eq!(s.write(&image(seq)), Ok(slot));
        assert_eq!(s.latest(), Ok((slot, image(seq))));
    }
    assert_eq!(s.status(), [SlotStatus::Valid { sequence: 3 }, SlotStatus::Valid { sequence: 4 }]);
}

#[test]
fn sequence_must_grow() {
    let mut s = Store::new(MemRegion::zeroed(4096));
    s.write(&image(5)).unwrap();
    assert_eq!(s.write(&image(5)), Err(StoreError::SequenceNotNewer { sequence: 5, newest: 5 }));
    assert_eq!(s.write(&image(4)), Err(StoreError::SequenceNotNewer { sequence: 4, newest: 5 }));
    assert_eq!(s.latest(), Ok((Slot::A, image(5))));
    assert_eq!(s.status()[1], SlotStatus::Empty);
}

#[test]
fn too_large_and_invalid_images_are_refused_and_change_nothing() {
    let mut s = Store::new(MemRegion::zeroed(4096));
    s.write(&image(1)).unwrap();
    let before = s.region().clone();
    let big = big_image(2);
    assert_eq!(s.write(&big), Err(StoreError::TooLarge { len: big.len(), slot_len: 2048 }));
    let mut bad = image(2);
    bad[70] ^= 1;
    assert!(matches!(s.write(&bad), Err(StoreError::Invalid(ImageError::BodyChecksum { .. }))));
    assert_eq!(s.write(&[]), Err(StoreError::Invalid(ImageError::TooShort { needed: 64, got: 0 })));
    assert_eq!(s.region(), &before);
}

#[test]
fn an_image_exactly_a_slot_long_fits() {
    let img = image(1);
    let mut s = Store::new(MemRegion::zeroed(2 * img.len() + 1));
    assert_eq!(s.write(&img), Ok(Slot::A));
    assert_eq!(s.write(&image(2)), Ok(Slot::B));
    assert_eq!(s.latest().unwrap().1, image(2));
}

/// Writes `next` into a store holding `before` with power lost after every
/// `step`-th byte count, and checks what a reboot finds.
fn tear_every(before: &[Vec<u8>], next: &[u8], step: usize) {
    let region_len = 2 * next.len().max(before.iter().map(Vec::len).max().unwrap_or(0)) + 10;
    let mut good = Store::new(MemRegion::zeroed(region_len));
    for img in before {
        good.write(img).unwrap();
    }
    let prior = good.latest().ok();
    let target = match good.status() {
        [SlotStatus::Valid { sequence: a }, SlotStatus::Valid { sequence: b }] if b < a => Slot::B,
        [SlotStatus::Valid { .. }, SlotStatus::Valid { .. }] | [SlotStatus::Empty, _] => Slot::A,
        _ => Slot::B,
    };
    let mut cut = 0;
    while cut <= next.len() {
        let mut s = Store::new(TearingRegion::new(good.region().clone(), cut));
        let r = s.write(next);
        let complete = cut >= next.len();
        assert_eq!(r.is_ok(), complete, "cut {cut}: {r:?}");
        if !complete {
            assert_eq!(r, Err(StoreError::Region(RegionError::PowerLost)));
        }
        // Reboot.
        let rebooted = Store::new(s.into_inner().into_inner());
        let latest = rebooted.latest();
        if complete {
            assert_eq!(latest, Ok((target, next.to_vec())));
        } else {
            match &prior {
                Some(p) => assert_eq!(latest.as_ref(), Ok(p), "cut {cut}"),
                None => assert!(latest.is_err(), "cut {cut}: {latest:?}"),
            }
            // The torn slot never passes for the new image.
            assert_ne!(rebooted.status()[target.index()], SlotStatus::Valid { sequence: seq_of(next) });
            // And the next write after the reboot succeeds, into the torn slot
            // unless that slot still holds its old valid image.
            let mut again = rebooted;
            let w = again.write(next).unwrap();
            assert_eq!(again.latest(), Ok((w, next.to_vec())));
        }
        cut += step;
    }
}

#[test]
fn torn_first_write_leaves_nothing_valid() {
    tear_every(&[], &image(1), 1);
}

#[test]
fn torn_second_write_keeps_the_first() {
    tear_every(&[image(1)], &image(2), 1);
}

#[test]
fn torn_third_write_keeps_the_second() {
    tear_every(&[image(1), image(2)], &image(3), 1);
}

/// A store that rtcr filled with format-version-3 images (CRC-64/XZ) before
/// it wrote version 5 (XXH64): both are read, and a torn version-5 write
/// keeps the version-3 image.
#[test]
fn torn_version_5_write_over_version_3_images_keeps_the_newest_of_them() {
    let v3 = |seq| {
        let m = meta(Arch::Amd64, 12, seq);
        common::encode_v3(&m, &small(&m))
    };
    assert_eq!(rtcr_image::read_header(&v3(1)).unwrap().format_version, 3);
    tear_every(&[v3(1), v3(2)], &image(3), 1);
}

#[test]
fn torn_write_of_a_large_image_keeps_the_previous() {
    tear_every(&[big_image(1), big_image(2)], &big_image(3), 97);
}

#[test]
fn a_corrupt_slot_is_passed_over_and_rewritten_first() {
    let mut s = Store::new(MemRegion::zeroed(4096));
    s.write(&image(1)).unwrap();
    s.write(&image(2)).unwrap(); // B, newest
    let mut region = s.into_inner();
    region.0[2048 + 100] ^= 0x40; // B's body
    let mut s = Store::new(region);
    assert!(matches!(s.status()[1], SlotStatus::Corrupt(ImageError::BodyChecksum { .. })));
    assert_eq!(s.latest(), Ok((Slot::A, image(1))));
    // The corrupt slot is the one to overwrite, though A is older.
    assert_eq!(s.write(&image(3)), Ok(Slot::B));
    assert_eq!(s.latest(), Ok((Slot::B, image(3))));
    assert_eq!(s.status()[0], SlotStatus::Valid { sequence: 1 });
}

#[test]
fn corrupting_a_picks_b() {
    let mut s = Store::new(MemRegion::zeroed(4096));
    s.write(&image(1)).unwrap();
    s.write(&image(2)).unwrap();
    s.write(&image(3)).unwrap(); // A, newest
    let mut region = s.into_inner();
    region.0[20] ^= 1; // A's header
    let s = Store::new(region);
    assert!(matches!(s.status()[0], SlotStatus::Corrupt(ImageError::HeaderChecksum { .. })));
    assert_eq!(s.latest(), Ok((Slot::B, image(2))));
}

#[test]
fn both_corrupt_gives_both_reasons() {
    let mut s = Store::new(MemRegion::zeroed(4096));
    s.write(&image(1)).unwrap();
    s.write(&image(2)).unwrap();
    let mut region = s.into_inner();
    region.0[3] = b'X'; // A: magic
    region.0[2048 + 64 + 5] ^= 0xFF; // B: body
    let s = Store::new(region);
    match s.latest() {
        Err(StoreError::NoValidImage { a: ImageError::BadMagic, b: ImageError::BodyChecksum { .. } }) => {}
        other => panic!("{other:?}"),
    }
    let text = s.latest().unwrap_err().to_string();
    assert!(text.starts_with("no valid image: slot A: bad magic"), "{text}");
    assert!(text.contains("slot B: body checksum mismatch"), "{text}");
}

#[test]
fn one_corrupt_one_empty() {
    let mut region = MemRegion::zeroed(4096);
    region.0[2048..2048 + 8].copy_from_slice(b"garbage!");
    let s = Store::new(region);
    assert_eq!(s.status(), [SlotStatus::Empty, SlotStatus::Corrupt(ImageError::BadMagic)]);
    assert_eq!(s.latest(), Err(StoreError::NoValidImage { a: ImageError::Blank, b: ImageError::BadMagic }));
}

#[test]
fn a_header_claiming_more_than_the_slot_is_corrupt() {
    let mut s = Store::new(MemRegion::zeroed(4096));
    s.write(&image(1)).unwrap();
    let mut region = s.into_inner();
    region.0[32..40].copy_from_slice(&5000u64.to_le_bytes());
    common::reseal_header_only(&mut region.0[..64]);
    let s = Store::new(region);
    assert_eq!(s.status()[0], SlotStatus::Corrupt(ImageError::BodyLength { stored: 5000, available: 2048 - 64 }));
    assert!(matches!(s.read_slot(Slot::A), Err(StoreError::SlotInvalid { slot: Slot::A, .. })));
}

#[test]
fn random_region_contents_never_panic() {
    let mut rng = Rng(7);
    for _ in 0..300 {
        let len = rng.below(3000);
        let mut bytes = rng.bytes(len);
        // Sometimes plant a valid magic and version at each slot start.
        if rng.below(2) == 0 && len >= 128 {
            for base in [0, len / 2] {
                bytes[base..base + 8].copy_from_slice(b"RTCRIMG\0");
                bytes[base + 8..base + 10].copy_from_slice(&1u16.to_le_bytes());
            }
        }
        let mut s = Store::new(MemRegion(bytes));
        let _ = s.status();
        assert!(s.latest().is_err());
        let _ = s.write(&image(1));
    }
}

/// A region whose reads fail: status says so, latest reports the device.
struct Broken;

impl Region for Broken {
    fn len(&self) -> usize {
        4096
    }
    fn read(&self, _: usize, _: &mut [u8]) -> Result<(), RegionError> {
        Err(RegionError::Device("read failed"))
    }
    fn write(&mut self, _: usize, _: &[u8]) -> Result<(), RegionError> {
        Err(RegionError::Device("write failed"))
    }
}

#[test]
fn an_unreadable_region_is_reported() {
    let mut s = Store::new(Broken);
    assert_eq!(s.status()[0], SlotStatus::Unreadable(RegionError::Device("read failed")));
    assert_eq!(s.latest(), Err(StoreError::Region(RegionError::Device("read failed"))));
    assert_eq!(s.write(&image(1)), Err(StoreError::Region(RegionError::Device("write failed"))));
}

#[test]
fn newest_first_orders_by_header_and_read_unchecked_leaves_the_body_to_the_caller() {
    let mut s = Store::new(MemRegion::zeroed(4096));
    assert!(s.newest_first().is_empty(), "nothing written");
    s.write(&image(1)).unwrap();
    assert_eq!(s.newest_first(), vec![Slot::A]);
    s.write(&image(2)).unwrap();
    assert_eq!(s.newest_first(), vec![Slot::B, Slot::A]);
    assert_eq!(s.read_unchecked(Slot::B), Ok(image(2)));
    // a flipped body byte in B: the header still names it newest, the
    // unchecked read returns it as it is, and decoding refuses it
    let off = s.slot_offset(Slot::B) + 100;
    let mut region = s.into_inner();
    region.0[off] ^= 1;
    let s = Store::new(region);
    assert_eq!(s.newest_first(), vec![Slot::B, Slot::A]);
    let torn = s.read_unchecked(Slot::B).unwrap();
    assert!(matches!(rtcr_image::decode(&torn), Err(ImageError::BodyChecksum { .. })));
    assert!(matches!(s.read_slot(Slot::B), Err(StoreError::SlotInvalid { slot: Slot::B, .. })));
    // a broken header drops the slot from the order
    let mut region = s.into_inner();
    region.0[0] ^= 0xff;
    let s = Store::new(region);
    assert_eq!(s.newest_first(), vec![Slot::B]);
}

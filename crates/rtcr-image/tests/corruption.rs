//! Damage is always detected and never panics: every single-bit flip, random
//! multi-byte corruption of a large image, truncation at every length, and
//! arbitrary bytes — also behind a header whose CRCs are right, so the body
//! decoder itself meets garbage.

mod common;

use common::{body, meta, realistic, seal, small, Rng};
use rtcr_image::{decode, encode, verify, verify_prefix, Arch, ImageError};

fn readable(v: u16) -> bool {
    rtcr_image::image::is_readable(v)
}

#[test]
fn every_single_bit_flip_is_detected() {
    let m = meta(Arch::Amd64, 12, 5);
    let img = encode(&m, &small(&m)).unwrap();
    every_bit_flip_detected(&img);
}

/// The same for an image of format version 3 (CRC-64/XZ): still read, still
/// checked.
#[test]
fn every_single_bit_flip_of_a_version_3_image_is_detected() {
    let m = meta(Arch::Amd64, 12, 5);
    let img = common::encode_v3(&m, &small(&m));
    assert_eq!(decode(&img).unwrap(), (m, small(&m)));
    every_bit_flip_detected(&img);
}

fn every_bit_flip_detected(img: &[u8]) {
    assert!(img.len() > 200, "small but not trivial: {} bytes", img.len());
    for bit in 0..img.len() * 8 {
        let mut bad = img.to_vec();
        bad[bit / 8] ^= 1 << (bit % 8);
        let e = verify(&bad).expect_err("a flipped bit verified");
        // Each region of the image fails for its own reason.
        match bit / 8 {
            0..=7 => assert_eq!(e, ImageError::BadMagic, "bit {bit}"),
            // a flip that names another version this reader knows leaves
            // the header CRC to catch it
            8..=9 if readable(u16::from_le_bytes([bad[8], bad[9]])) => {
                assert!(matches!(e, ImageError::HeaderChecksum { .. }), "bit {bit}: {e}")
            }
            8..=9 => assert!(matches!(e, ImageError::UnsupportedVersion(_)), "bit {bit}: {e}"),
            10..=63 => assert!(matches!(e, ImageError::HeaderChecksum { .. }), "bit {bit}: {e}"),
            _ => assert!(matches!(e, ImageError::BodyChecksum { .. }), "bit {bit}: {e}"),
        }
        assert!(decode(&bad).is_err());
    }
}

#[test]
fn random_multi_byte_corruptions_of_a_large_image_are_detected() {
    let m = meta(Arch::Amd64, 12, 5);
    let img = encode(&m, &realistic(&m)).unwrap();
    assert!(img.len() > 20_000);
    let mut rng = Rng(0x5eed);
    for trial in 0..1500 {
        let mut bad = img.clone();
        if trial % 2 == 0 {
            // Scattered: 2..=16 bytes anywhere, each changed.
            for _ in 0..2 + rng.below(15) {
                let at = rng.below(bad.len());
                bad[at] ^= 1 + rng.below(255) as u8;
            }
        } else {
            // A burst: a run of up to 200 bytes overwritten with noise.
            let len = 1 + rng.below(200);
            let at = rng.below(bad.len() - len);
            for b in &mut bad[at..at + len] {
                *b = rng.byte();
            }
        }
        if bad == img {
            continue; // noise happened to write the same bytes
        }
        assert!(verify(&bad).is_err(), "trial {trial} verified");
    }
}

#[test]
fn truncation_at_every_length_is_an_error() {
    let m = meta(Arch::Amd64, 12, 5);
    for img in [encode(&m, &small(&m)).unwrap(), encode(&m, &realistic(&m)).unwrap()] {
        for len in 0..img.len() {
            let e = verify(&img[..len]).unwrap_err();
            if len < 64 {
                assert_eq!(e, ImageError::TooShort { needed: 64, got: len });
            } else {
                let body = img.len() as u64 - 64;
                assert_eq!(e, ImageError::BodyLength { stored: body, available: len as u64 - 64 });
            }
            assert_eq!(decode(&img[..len]).unwrap_err(), e);
        }
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let mut rng = Rng(1);
    for _ in 0..4000 {
        let n = rng.below(600);
        let bytes = rng.bytes(n);
        assert!(decode(&bytes).is_err());
        let _ = verify_prefix(&bytes);
    }
    // With the right magic and version, the rest random.
    for _ in 0..4000 {
        let n = 64 + rng.below(300);
        let mut bytes = rng.bytes(n);
        bytes[..8].copy_from_slice(b"RTCRIMG\0");
        bytes[8..10].copy_from_slice(&1u16.to_le_bytes());
        assert!(decode(&bytes).is_err());
    }
}

#[test]
fn garbage_bodies_behind_valid_headers_never_panic() {
    let m = meta(Arch::Amd64, 12, 5);
    let mut rng = Rng(2);
    for _ in 0..4000 {
        let n = rng.below(400);
        let img = seal(&m, &rng.bytes(n));
        assert!(verify(&img).is_ok());
        // Random bytes almost never form a consistent checkpoint; whatever
        // they form, decoding returns.
        let _ = decode(&img);
    }
}

#[test]
fn mutated_bodies_behind_valid_headers_never_panic() {
    // Near-valid bodies reach deeper into the decoder than noise does.
    let m = meta(Arch::Amd64, 12, 5);
    let good = body(&realistic(&m));
    let mut rng = Rng(3);
    for _ in 0..600 {
        let mut b = good.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(b.len().min(3000));
            b[at] = rng.byte();
        }
        if rng.below(4) == 0 {
            b.truncate(rng.below(b.len()));
        }
        if let Ok((m2, cp)) = decode(&seal(&m, &b)) {
            assert_eq!(m2, m);
            assert_eq!(rtcr_image::check(&m2, &cp), Ok(()));
        }
    }
}

#[test]
fn a_body_longer_than_its_record_is_refused() {
    let m = meta(Arch::Amd64, 12, 5);
    let mut b = body(&small(&m));
    b.extend_from_slice(&[0, 0]);
    assert_eq!(decode(&seal(&m, &b)), Err(ImageError::Body(rtcr_image::BodyError::TrailingBytes { extra: 2 })));
}

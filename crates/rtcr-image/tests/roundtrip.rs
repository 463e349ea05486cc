//! Images of realistic checkpoints come back exactly as they went in, on both
//! architectures, and a restorer refuses an image of another architecture or
//! page size.

mod common;

use common::{meta, realistic};
use rtcr_image::{decode, decode_for, encode, read_header, verify, Arch, ImageError, HEADER_LEN};

#[test]
fn realistic_amd64_round_trips() {
    let m = meta(Arch::Amd64, 12, 42);
    let cp = realistic(&m);
    assert_eq!(cp.threads.len(), 2);
    assert!(cp.threads.iter().all(|t| t.regs.len() == 26 && t.utcb_words.len() == 128));
    let img = encode(&m, &cp).unwrap();
    assert_eq!(verify(&img), Ok(m));
    let (m2, cp2) = decode(&img).unwrap();
    assert_eq!(m2, m);
    assert_eq!(cp2, cp);
}

#[test]
fn realistic_arm64_with_64k_pages_round_trips() {
    let m = meta(Arch::Arm64, 16, 3);
    let cp = realistic(&m);
    assert!(cp.threads.iter().all(|t| t.regs.len() == 40));
    assert!(cp.pages.iter().all(|p| p.data.len() == 65536));
    let img = encode(&m, &cp).unwrap();
    assert_eq!(decode_for(&img, Arch::Arm64, 16).unwrap(), (m, cp));
}

#[test]
fn encoding_is_deterministic_and_header_describes_it() {
    let m = meta(Arch::Amd64, 12, 9);
    let cp = realistic(&m);
    let a = encode(&m, &cp).unwrap();
    let b = encode(&m, &cp).unwrap();
    assert_eq!(a, b);
    let h = read_header(&a).unwrap();
    assert_eq!(h.meta(), m);
    assert_eq!(h.format_version, 5);
    assert_eq!(h.flags, 0);
    assert_eq!(h.image_len(), a.len() as u64);
    assert_eq!(h.body_len as usize, a.len() - HEADER_LEN);
    // read_header looks at the header only.
    assert_eq!(read_header(&a[..HEADER_LEN]), Ok(h));
}

#[test]
fn decode_for_refuses_another_arch() {
    let m = meta(Arch::Amd64, 12, 1);
    let img = encode(&m, &realistic(&m)).unwrap();
    assert_eq!(
        decode_for(&img, Arch::Arm64, 12),
        Err(ImageError::WrongArch { image: Arch::Amd64, expected: Arch::Arm64 })
    );
    assert!(decode_for(&img, Arch::Amd64, 12).is_ok());
    // Plain decode takes it: only the restorer knows where it runs.
    assert!(decode(&img).is_ok());
}

#[test]
fn decode_for_refuses_another_page_size() {
    let m = meta(Arch::Arm64, 16, 1);
    let img = encode(&m, &realistic(&m)).unwrap();
    assert_eq!(decode_for(&img, Arch::Arm64, 12), Err(ImageError::WrongPageSize { image: 16, expected: 12 }));
    let e = decode_for(&img, Arch::Arm64, 12).unwrap_err().to_string();
    assert_eq!(e, "image has 65536 byte pages, expected 4096");
}

#[test]
fn decode_for_still_checks_the_image() {
    let m = meta(Arch::Amd64, 12, 1);
    let mut img = encode(&m, &realistic(&m)).unwrap();
    let last = img.len() - 1;
    img[last] ^= 1;
    assert!(matches!(decode_for(&img, Arch::Amd64, 12), Err(ImageError::BodyChecksum { .. })));
}

#[test]
fn errors_read_well() {
    let m = meta(Arch::Amd64, 12, 1);
    let img = encode(&m, &realistic(&m)).unwrap();
    assert_eq!(verify(&img[..10]).unwrap_err().to_string(), "too short: 10 bytes, a header needs 64");
    let mut bad = img.clone();
    bad[0] = b'X';
    assert_eq!(verify(&bad).unwrap_err().to_string(), "bad magic: not an rtcr image");
    let mut longer = img.clone();
    longer.extend_from_slice(&[0; 3]);
    assert_eq!(verify(&longer), Err(ImageError::TrailingBytes { extra: 3 }));
    assert_eq!(verify(&longer).unwrap_err().to_string(), "3 bytes follow the end of the image");
}

#[test]
fn version_1_to_4_images_are_still_read_and_others_refused() {
    // versions 2 and 3 only appended enum variants, 4 the placement, 5
    // changed the checksum only: an older image (its header says 1, 2 or
    // 3, its checksums are CRC-64/XZ, it has no placement) decodes as it is
    let m = meta(Arch::Amd64, 12, 7);
    let mut cp = realistic(&m);
    cp.placement.clear();
    let mut img = common::encode_v3(&m, &cp);
    for v in [3u16, 2, 1] {
        img[8..10].copy_from_slice(&v.to_le_bytes());
        common::reseal_header_only(&mut img);
        assert_eq!(read_header(&img).unwrap().format_version, v);
        assert_eq!(read_header(&img).unwrap().checksum(), rtcr_image::checksum::Algo::Crc64Xz);
        assert_eq!(decode(&img).unwrap(), (m, cp.clone()), "version {v}");
    }
    // the same records in version 5 differ in the checksums and the
    // placement at the end (none: one zero byte)
    let v5 = encode(&m, &cp).unwrap();
    assert_eq!(read_header(&v5).unwrap().checksum(), rtcr_image::checksum::Algo::Xxh64);
    assert_eq!(v5[HEADER_LEN..v5.len() - 1], img[HEADER_LEN..]);
    assert_eq!(v5.last(), Some(&0));
    assert_ne!(v5[40..48], img[40..48]);
    // version 4: CRC-64/XZ with the placement
    let full = realistic(&m);
    let v4 = common::encode_v4(&m, &full);
    assert_eq!(read_header(&v4).unwrap().checksum(), rtcr_image::checksum::Algo::Crc64Xz);
    assert_eq!(decode(&v4).unwrap(), (m, full.clone()));
    // a body with the placement labelled 3 is refused, not misread
    let mut mislabelled = v4.clone();
    mislabelled[8..10].copy_from_slice(&3u16.to_le_bytes());
    common::reseal_header_only(&mut mislabelled);
    assert!(matches!(decode(&mislabelled), Err(ImageError::Body(_))), "{:?}", decode(&mislabelled));
    // a version-3 header over XXH64 checksums (or the other way round) fails
    let mut mixed = v5.clone();
    mixed[8..10].copy_from_slice(&3u16.to_le_bytes());
    assert!(matches!(decode(&mixed), Err(ImageError::HeaderChecksum { .. })));
    for v in [0u16, 6, 0xffff] {
        img[8..10].copy_from_slice(&v.to_le_bytes());
        common::reseal_header_only(&mut img);
        assert_eq!(decode(&img).map(|_| ()), Err(ImageError::UnsupportedVersion(v)));
    }
}

/// The borrowed decode a restore uses gives the records `decode_for` gives,
/// with each page's bytes borrowed from the image instead of copied.
#[test]
fn borrowed_decode_agrees_with_decode() {
    for m in [meta(Arch::Amd64, 12, 3), meta(Arch::Arm64, 16, 4)] {
        let mut cp = realistic(&m);
        // a zero page too (no bytes)
        let last = cp.pages.last().unwrap().vaddr;
        cp.pages.push(rtcr_image::PageRecord { vaddr: last + (1 << m.page_shift), rights: 6, data: Vec::new() });
        assert!(cp.pages.iter().any(|p| !p.data.is_empty()));
        let mut cp3 = cp.clone();
        cp3.placement.clear();
        for (img, cp) in [(encode(&m, &cp).unwrap(), &cp), (common::encode_v3(&m, &cp3), &cp3)] {
            let (meta_b, records, data) = rtcr_image::decode_borrowed_for(&img, m.arch, m.page_shift).unwrap();
            assert_eq!(meta_b, m);
            assert_eq!(data.len(), cp.pages.len());
            assert!(records.pages.iter().all(|p| p.data.is_empty()));
            let mut whole = records.clone();
            for (p, d) in whole.pages.iter_mut().zip(&data) {
                p.data = d.to_vec();
                // borrowed: the bytes lie inside the image
                let inside = img.as_ptr_range();
                assert!(d.is_empty() || (inside.contains(&d.as_ptr()) && d.as_ptr_range().end <= inside.end));
            }
            assert_eq!((m, whole), decode_for(&img, m.arch, m.page_shift).unwrap());
        }
    }
}

/// It checks what `decode_for` checks: the architecture, the checksums
/// (any flipped byte), trailing bytes, and pages that are not one page long.
#[test]
fn borrowed_decode_refuses_what_decode_refuses() {
    let m = meta(Arch::Amd64, 12, 3);
    let img = encode(&m, &realistic(&m)).unwrap();
    assert_eq!(
        rtcr_image::decode_borrowed_for(&img, Arch::Arm64, 12).map(|_| ()),
        Err(ImageError::WrongArch { image: Arch::Amd64, expected: Arch::Arm64 })
    );
    for at in (0..img.len()).step_by(97) {
        let mut bad = img.clone();
        bad[at] ^= 0x10;
        assert!(rtcr_image::decode_borrowed_for(&bad, Arch::Amd64, 12).is_err(), "byte {at}");
    }
    let mut longer = img.clone();
    longer.push(0);
    assert_eq!(
        rtcr_image::decode_borrowed_for(&longer, Arch::Amd64, 12).map(|_| ()),
        Err(ImageError::TrailingBytes { extra: 1 })
    );
    // a page of 100 bytes behind valid checksums
    let mut cp = realistic(&m);
    cp.pages[0].data = vec![7; 100];
    let short = common::seal(&m, &common::body(&cp));
    assert!(matches!(rtcr_image::decode_borrowed_for(&short, Arch::Amd64, 12), Err(ImageError::Inconsistent(_))));
    assert!(matches!(decode_for(&short, Arch::Amd64, 12), Err(ImageError::Inconsistent(_))));
}

#[test]
fn placements_round_trip_and_are_checked() {
    let m = meta(Arch::Arm64, 12, 9);
    let cp = realistic(&m);
    assert_eq!(cp.placement.len(), 2);
    assert_eq!(decode(&encode(&m, &cp).unwrap()).unwrap(), (m, cp.clone()));
    let mut bad = cp.clone();
    bad.placement[1].thread = 0;
    assert_eq!(encode(&m, &bad).map(|_| ()), Err(ImageError::Inconsistent("a thread has two placements")));
    let mut bad = cp.clone();
    bad.placement[1].thread = cp.threads.len() as u32;
    assert_eq!(encode(&m, &bad).map(|_| ()), Err(ImageError::Inconsistent("a placement names a thread out of range")));
}

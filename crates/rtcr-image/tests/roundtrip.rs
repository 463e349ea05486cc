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
    assert_eq!(h.format_version, 4);
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
fn version_1_to_3_images_are_still_read_and_a_later_one_refused() {
    // versions 2 and 3 only appended enum variants; version 4 appended the
    // placement to the body. An image as versions 1-3 wrote it is the body
    // without that last field (an empty one is a single zero byte)
    let m = meta(Arch::Amd64, 12, 7);
    let mut cp = realistic(&m);
    cp.placement.clear();
    let v4 = encode(&m, &cp).unwrap();
    assert_eq!(read_header(&v4).unwrap().format_version, 4);
    assert_eq!(v4.last(), Some(&0));
    let mut old = common::seal(&m, &v4[64..v4.len() - 1]);
    for v in 1..=3u16 {
        old[8..10].copy_from_slice(&v.to_le_bytes());
        common::reseal_header_only(&mut old);
        assert_eq!(decode(&old).unwrap(), (m, cp.clone()), "version {v}");
    }
    // a body of version 4 labelled 3 is refused, not misread
    let mut mislabelled = v4.clone();
    mislabelled[8..10].copy_from_slice(&3u16.to_le_bytes());
    common::reseal_header_only(&mut mislabelled);
    assert!(matches!(decode(&mislabelled), Err(ImageError::Body(_))), "{:?}", decode(&mislabelled));
    old[8..10].copy_from_slice(&5u16.to_le_bytes());
    common::reseal_header_only(&mut old);
    assert_eq!(decode(&old).map(|_| ()), Err(ImageError::UnsupportedVersion(5)));
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

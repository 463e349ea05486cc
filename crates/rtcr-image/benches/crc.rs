//! The image checksum's speed against a baseline measured in the same run:
//! CRC-64/XZ over 4 MiB with the `crc` crate's slice-by-16 tables (what
//! rtcr-image uses) against the byte-at-a-time table rtcr-image had before
//! (kept here as the baseline), and against a memcpy of the same bytes.
//! Both must give the same CRC. Then the hashes format version 5 chose from:
//! XXH64 (what it uses) and XXH3-64.
//!
//! Run: `cargo bench -p rtcr-image --bench crc`

use std::hint::black_box;
use std::time::{Duration, Instant};

const POLY_REFLECTED: u64 = 0xC96C_5795_D787_0F42;

fn table() -> [u64; 256] {
    let mut t = [0u64; 256];
    for (i, e) in t.iter_mut().enumerate() {
        let mut c = i as u64;
        for _ in 0..8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY_REFLECTED } else { c >> 1 };
        }
        *e = c;
    }
    t
}

fn bytewise(t: &[u64; 256], data: &[u8]) -> u64 {
    let mut crc = !0u64;
    for &b in data {
        crc = t[((crc ^ b as u64) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

fn best_of(n: usize, mut f: impl FnMut()) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    let data: Vec<u8> = (0..4u32 << 20).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let t = table();
    assert_eq!(bytewise(&t, &data), rtcr_image::crc::crc64(&data), "the two CRCs agree");
    let mut out = vec![0u8; data.len()];
    let copy = best_of(10, || {
        out.copy_from_slice(black_box(&data));
        black_box(&mut out);
    });
    let old = best_of(5, || {
        black_box(bytewise(&t, black_box(&data)));
    });
    let new = best_of(5, || {
        black_box(rtcr_image::crc::crc64(black_box(&data)));
    });
    let mbs = |d: Duration| data.len() as f64 / d.as_secs_f64() / 1e6;
    println!("CRC-64/XZ over 4 MiB (best of 5), memcpy of the same bytes as the baseline");
    println!("{:<28} {:>10.0} MB/s {:>8.1} x memcpy time", "memcpy", mbs(copy), 1.0);
    println!(
        "{:<28} {:>10.0} MB/s {:>8.1} x memcpy time",
        "byte at a time (before)",
        mbs(old),
        old.as_secs_f64() / copy.as_secs_f64()
    );
    println!(
        "{:<28} {:>10.0} MB/s {:>8.1} x memcpy time",
        "crc crate, slice-by-16 (now)",
        mbs(new),
        new.as_secs_f64() / copy.as_secs_f64()
    );
    println!("slice-by-16 is {:.1} x as fast as byte at a time", old.as_secs_f64() / new.as_secs_f64());
    // the hashes format version 5 chose from (xxhash-rust): XXH64 is its checksum
    let h3 = best_of(5, || {
        black_box(xxhash_rust::xxh3::xxh3_64(black_box(&data)));
    });
    let h64 = best_of(5, || {
        black_box(xxhash_rust::xxh64::xxh64(black_box(&data), 0));
    });
    for (name, d) in [("XXH3-64", h3), ("XXH64", h64)] {
        println!("{:<28} {:>10.0} MB/s {:>8.1} x memcpy time", name, mbs(d), d.as_secs_f64() / copy.as_secs_f64());
    }
}

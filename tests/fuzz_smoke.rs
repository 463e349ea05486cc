//! A short smoke run of both fuzz targets (fuzz/): their bodies over the
//! committed corpora and a few thousand deterministic pseudo-random inputs,
//! so CI runs what the fuzzer runs, on every commit.

use std::path::Path;

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(name);
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).filter_map(|e| std::fs::read(e.path()).ok()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

fn prng(seed: u64, n: usize, max_len: usize) -> Vec<Vec<u8>> {
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|_| {
            let len = (next() as usize) % max_len;
            (0..len).map(|_| next() as u8).collect()
        })
        .collect()
}

#[test]
fn image_decode_smoke() {
    let c = corpus("image_decode");
    assert!(!c.is_empty(), "the image corpus is in the repository");
    // the corpus and mutations of it, and random bytes
    let mut inputs = c.clone();
    for (i, img) in c.iter().enumerate() {
        for (k, flip) in prng(i as u64 + 7, 200, 64).into_iter().enumerate() {
            let mut m = img.clone();
            for (j, b) in flip.iter().enumerate() {
                if !m.is_empty() {
                    let at = (k * 131 + j * 17) % m.len();
                    m[at] ^= *b;
                }
            }
            inputs.push(m);
        }
    }
    inputs.extend(prng(42, 2000, 512));
    for d in &inputs {
        rtcr_sim::fuzz::image_decode(d);
    }
    eprintln!("image_decode smoke: {} inputs", inputs.len());
}

#[test]
fn dispatch_smoke() {
    let mut inputs = corpus("dispatch");
    inputs.extend(prng(7, 40, 4096));
    let mut served = 0;
    for d in &inputs {
        served += rtcr_sim::fuzz::dispatch(d);
    }
    eprintln!("dispatch smoke: {} scripts, {served} requests reached rtcr", inputs.len());
    assert!(served > 100);
}

//! Arbitrary bytes as a checkpoint image and as an A/B store region.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rtcr_sim::fuzz::image_decode(data);
});

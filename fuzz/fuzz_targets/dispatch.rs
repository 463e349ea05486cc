//! Arbitrary bytes as the requests a child sends to rtcr's services.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    rtcr_sim::fuzz::dispatch(data);
});

#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bams3_fuzz::targets::region(data));

#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bams3_fuzz::targets::ffi_text(data));

//! The deep check of an arbitrary image, untyped and typed (opened in memory, recovery included).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pmem_tests::hostile::targets::check_image(data);
});

//! The inspector over an arbitrary image.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pmem_tests::hostile::targets::inspect(data);
});

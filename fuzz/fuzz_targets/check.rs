//! The deep check of an arbitrary image, untyped and typed (opened in memory, recovery included).
#![no_main]

use libfuzzer_sys::{fuzz_mutator, fuzz_target};

fuzz_target!(|data: &[u8]| {
    pmem_tests::hostile::targets::check_image(data);
});

// Half the mutations are libFuzzer's own, half structure-aware (`pmem_tests::hostile::mutate`):
// damage aimed at one on-media structure, with its checksum recomputed.
fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    pmem_tests::hostile::targets::mutate_with(data, size, max_size, seed, |d, s, m| {
        libfuzzer_sys::fuzzer_mutate(d, s, m)
    })
});

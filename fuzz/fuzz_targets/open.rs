//! Opens an arbitrary pool file (recovering it), checks, reads, writes and reopens it.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pmem_tests::hostile::targets::open(data);
});

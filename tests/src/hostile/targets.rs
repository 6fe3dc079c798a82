//! The fuzz targets' bodies: the coverage-guided fuzzer (`fuzz/`) and the stable replay of its
//! regression corpus call these, so both run the same code. Each panics on a bug (a
//! disagreement the library should never show); errors from the library are fine.

use std::path::PathBuf;
use std::sync::OnceLock;

use pmem_core::check::check;
use pmem_core::inspect::Inspection;
use pmem_core::{Pool, PoolImage};

use super::{case, format, Root};

/// A directory for the case file, made once per process, on tmpfs when there is one.
fn case_path() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| crate::shm_tempdir("pmem-fuzz-"))
        .path()
        .join(format!("case-{:?}.pool", std::thread::current().id()))
}

/// With both header copies' checksums recomputed, if they start like headers: lets the fuzzer
/// reach what the header describes with mutations of its fields.
fn sealed(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < 2 * format::HEADER_SIZE || !data.starts_with(b"PMEMPOOL") {
        return None;
    }
    let mut fixed = data.to_vec();
    format::seal_header(&mut fixed, 0);
    format::seal_header(&mut fixed, 1);
    (fixed != data).then_some(fixed)
}

/// Opens `data` as a pool file and runs the whole hostile case on it (see [`case::run_file`]),
/// then again with its headers' checksums recomputed.
pub fn open(data: &[u8]) {
    let path = case_path();
    if let Err(e) = case::run_file(data, &path, None) {
        panic!("{e}");
    }
    if let Some(fixed) = sealed(data) {
        if let Err(e) = case::run_file(&fixed, &path, None) {
            panic!("(headers resealed) {e}");
        }
    }
}

/// The deep check of an image without its types, and with them over an image opened in memory
/// (the simulated domain, recovery included).
pub fn check_image(data: &[u8]) {
    for bytes in std::iter::once(data.to_vec()).chain(sealed(data)) {
        let _ = pmem_core::check::check_image(PoolImage::from_bytes(&bytes));
        if let Ok(pool) = Pool::<Root>::builder().open_image(PoolImage::from_bytes(&bytes)) {
            let _ = check(&pool);
            if let Err(e) = case::read_all(&pool) {
                panic!("{e}");
            }
        }
    }
}

/// The inspector over an image: its check, statistics, object listing and reads.
pub fn inspect(data: &[u8]) {
    for bytes in std::iter::once(data.to_vec()).chain(sealed(data)) {
        let Ok(inspection) = Inspection::from_image(PoolImage::from_bytes(&bytes)) else {
            continue;
        };
        let _ = inspection.check();
        let _ = inspection.stats();
        let _ = inspection.type_graph();
        let _ = inspection.root();
        let objects = inspection.objects();
        for object in objects.iter().take(256) {
            let _ = inspection.type_name(object.fingerprint);
            match inspection.object_at(object.offset) {
                Ok(found) => assert_eq!(
                    found.offset, object.offset,
                    "object_at names a different object than the listing"
                ),
                Err(e) => panic!("a listed object at {:#x} is refused: {e}", object.offset),
            }
            let _ = inspection.bytes(object.offset, object.size);
        }
        let len = bytes.len() as u64;
        for probe in [0, 8, len / 2, len.saturating_sub(8), len, u64::MAX] {
            let _ = inspection.object_at(probe);
            let _ = inspection.bytes(probe, 8);
        }
    }
}

/// The target named `name` (`open`, `check`, `inspect`).
pub fn by_name(name: &str) -> Option<fn(&[u8])> {
    match name {
        "open" => Some(open),
        "check" => Some(check_image),
        "inspect" => Some(inspect),
        _ => None,
    }
}

/// A fuzzer's custom mutator: for odd `seed`s, libFuzzer's own mutation
/// (`default`), else the structure-aware damage of [`mutate::mutate`](super::mutate::mutate)
/// applied to the first `size` bytes of `data`; returns the new size (at most `max_size`).
pub fn mutate_with(
    data: &mut [u8],
    size: usize,
    max_size: usize,
    seed: u32,
    default: impl FnOnce(&mut [u8], usize, usize) -> usize,
) -> usize {
    if seed % 2 == 1 {
        return default(data, size, max_size);
    }
    let mut bytes = data[..size].to_vec();
    let mut rng = crate::rng::Rng(u64::from(seed) << 32 | size as u64);
    super::mutate::mutate(&mut bytes, &mut rng);
    let n = bytes.len().min(max_size).min(data.len());
    data[..n].copy_from_slice(&bytes[..n]);
    n
}

//! Shared helpers for the workspace-level tests.
pub mod child;
pub mod hostile;
pub mod rng;

/// The README's examples, compiled and run as doctests so that they stay true. They live here,
/// not in a published crate, because the quick start uses both pmem-core and pmem-collections
/// and the README is outside every published package.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// A temporary directory on tmpfs when there is one (pool files there are cheap to write and
/// flush), else in the default place.
pub fn shm_tempdir(prefix: &str) -> tempfile::TempDir {
    let builder = tempfile::Builder::new().prefix(prefix).to_owned();
    builder
        .tempdir_in("/dev/shm")
        .or_else(|_| builder.tempdir())
        .expect("create a temporary directory")
}

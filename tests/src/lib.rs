//! Shared helpers for the workspace-level tests.
pub mod child;
pub mod hostile;
pub mod rng;

/// A temporary directory on tmpfs when there is one (pool files there are cheap to write and
/// flush), else in the default place.
pub fn shm_tempdir(prefix: &str) -> tempfile::TempDir {
    let builder = tempfile::Builder::new().prefix(prefix).to_owned();
    builder
        .tempdir_in("/dev/shm")
        .or_else(|_| builder.tempdir())
        .expect("create a temporary directory")
}

//! The string store of the libpmemobj tutorial: a pool holding one string, replaced all or
//! nothing.
//!
//! The root holds the text as a [`PSlice<u8>`] and a count of writes. [`write()`] allocates the new
//! text, points the root at it and frees the old text, all in one transaction: a crash at any
//! instant leaves either the old string or the new one, and never leaks either.
//!
//! ```
//! use pmem_core::Pool;
//! use pmem_examples::string_store::{self, StringRoot};
//!
//! let pool = Pool::<StringRoot>::builder().create_simulated(1 << 20)?;
//! assert_eq!(string_store::read(&pool)?, None);
//! string_store::write(&pool, b"hello, persistent world")?;
//! assert_eq!(string_store::read(&pool)?.as_deref(), Some(&b"hello, persistent world"[..]));
//! # Ok::<(), pmem_core::Error>(())
//! ```

use std::path::Path;

use pmem_core::{PSlice, Persistent, Pool, Result};

use crate::read_bytes;

/// Layout name of string store pools.
pub const LAYOUT: &str = "string_store";

/// Size of a new string store pool file.
pub const POOL_SIZE: u64 = 8 << 20;

/// The root of a string store pool.
#[derive(Persistent, Debug, Clone, Copy)]
#[repr(C)]
pub struct StringRoot {
    /// The stored text (the null slice when it is empty).
    pub text: PSlice<u8>,
    /// How many times a string was stored; 0 means there is none.
    pub writes: u64,
}

/// Opens the string store pool at `path`, creating it if there is none.
pub fn open_or_create(path: impl AsRef<Path>) -> Result<Pool<StringRoot>> {
    Pool::<StringRoot>::builder()
        .layout(LAYOUT)
        .open_or_create(path, POOL_SIZE)
}

/// Opens an existing string store pool.
pub fn open(path: impl AsRef<Path>) -> Result<Pool<StringRoot>> {
    Pool::<StringRoot>::builder().layout(LAYOUT).open(path)
}

/// Replaces the stored string with `text`, in one transaction.
pub fn write(pool: &Pool<StringRoot>, text: &[u8]) -> Result<()> {
    pool.transaction(|tx| {
        let old = tx.root().text;
        let new = if text.is_empty() {
            PSlice::null()
        } else {
            tx.alloc_slice(text)?
        };
        let writes = tx.root().writes;
        let mut root = tx.root_mut();
        root.set_text(new)?;
        root.set_writes(writes + 1)?;
        if !old.is_null() {
            tx.free_slice(old)?;
        }
        Ok(())
    })
}

/// The stored string, or `None` if none was ever stored.
pub fn read(pool: &Pool<StringRoot>) -> Result<Option<Vec<u8>>> {
    pool.read(|r| {
        let root = r.root();
        if root.writes == 0 {
            return Ok(None);
        }
        read_bytes(r, root.text).map(Some)
    })?
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool() -> Pool<StringRoot> {
        Pool::<StringRoot>::builder()
            .layout(LAYOUT)
            .create_simulated(1 << 20)
            .unwrap()
    }

    #[test]
    fn empty_pool_has_no_string() {
        assert_eq!(read(&pool()).unwrap(), None);
    }

    #[test]
    fn write_replaces_and_frees_the_old_text() {
        let pool = pool();
        write(&pool, b"first").unwrap();
        write(&pool, b"the second, longer string").unwrap();
        assert_eq!(
            read(&pool).unwrap().as_deref(),
            Some(&b"the second, longer string"[..])
        );
        let report = pmem_core::check::check(&pool);
        assert!(report.is_healthy(), "{report}");
        assert_eq!(report.live_objects, 1, "the first text was freed");
        assert!(report.unreachable.is_empty());
    }

    #[test]
    fn empty_string_is_stored_as_such() {
        let pool = pool();
        write(&pool, b"something").unwrap();
        write(&pool, b"").unwrap();
        assert_eq!(read(&pool).unwrap(), Some(Vec::new()));
        assert_eq!(pmem_core::check::check(&pool).live_objects, 0);
    }

    #[test]
    fn a_large_string_fits() {
        let pool = pool();
        let text = vec![b'x'; 100_000];
        write(&pool, &text).unwrap();
        assert_eq!(read(&pool).unwrap(), Some(text));
    }
}

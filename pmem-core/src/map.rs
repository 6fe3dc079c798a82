//! Pool files: create with reserved space, open, lock, map.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Location, Result};
use crate::persist::FaultPlan;

/// An open, exclusively locked, mapped pool file. Unmapped and unlocked on drop.
pub(crate) struct PoolFile {
    // Field order: unmap before closing the file, which releases the lock.
    mapping: Mapping,
    /// Held open for the lock, which closing releases.
    _file: File,
}

enum Mapping {
    /// A regular shared mapping.
    Shared(memmap2::MmapRaw),
    /// A MAP_SYNC mapping of a DAX file: stores are durable once flushed from the CPU caches,
    /// with no msync.
    Sync { ptr: *mut u8, len: usize },
}

// SAFETY: the mapping is plain memory shared by design; synchronisation of access to it is the
// pool's job (its reader/writer lock). The raw pointer is only unmapped on drop.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        if let Mapping::Sync { ptr, len } = *self {
            // SAFETY: `ptr`/`len` are exactly what mmap returned, and nothing uses the mapping
            // after the pool (its owner) is dropped.
            unsafe { libc::munmap(ptr as *mut libc::c_void, len) };
        }
    }
}

impl PoolFile {
    /// Creates a pool file of `size` bytes, with the space reserved on the device, locked and
    /// mapped, under a temporary name beside `path`: [`publish`](Self::publish) gives it its
    /// name once it holds a complete pool, so no other opener ever sees a half-made file.
    pub(crate) fn create(path: &Path, size: u64) -> Result<(PoolFile, PathBuf)> {
        let location = Location::file(path);
        if path.exists() {
            return Err(Error::AlreadyExists { location });
        }
        remove_stale_temps(path);
        let temp = temp_name(path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o666)
            .open(&temp)
            .map_err(|e| Error::io(&location, "create", e))?;
        let result = lock(&file, &location).and_then(|()| {
            reserve(&file, size)
                .map_err(|e| Error::io(&location, "reserve space (posix_fallocate)", e))?;
            map(file, size, &location)
        });
        match result {
            Ok(pool_file) => Ok((pool_file, temp)),
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                Err(e)
            }
        }
    }

    /// Gives the file made by [`create`](Self::create) at `temp` its name `path`, atomically
    /// and durably, failing with [`Error::AlreadyExists`] if something took the name meanwhile.
    /// The temporary name is removed either way.
    ///
    /// The file's contents and size are synced before the name appears, and the directory after,
    /// so a pool that `create` returned survives a power cut under its name: a name whose file
    /// is not durable, or a durable file without its name, is never what a crash leaves.
    ///
    /// `faults` fails the syncs it names, as it fails fences.
    pub(crate) fn publish(
        &self,
        temp: &Path,
        path: &Path,
        faults: Option<&FaultPlan>,
    ) -> Result<()> {
        let location = Location::file(path);
        let synced =
            sync(&self._file, "fsync file", faults).map_err(|e| Error::io(&location, "fsync", e));
        let linked = synced.and_then(|()| {
            trace("link");
            std::fs::hard_link(temp, path).map_err(|e| Error::io(&location, "link into place", e))
        });
        let _ = std::fs::remove_file(temp);
        linked?;
        if let Err(e) = sync_parent(path, faults) {
            // Whether the name is durable is unknown: take it back rather than report a pool
            // that may vanish.
            let _ = std::fs::remove_file(path);
            return Err(Error::io(&location, "fsync the directory", e));
        }
        Ok(())
    }

    /// Opens and locks `path`. The caller reads the header with [`read_at`]
    /// before deciding how much to [`map`](Self::map_len).
    pub(crate) fn open_unmapped(path: &Path) -> Result<(File, u64)> {
        let location = Location::file(path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .map_err(|e| Error::io(&location, "open", e))?;
        lock(&file, &location)?;
        let len = file
            .metadata()
            .map_err(|e| Error::io(&location, "stat", e))?
            .len();
        Ok((file, len))
    }

    /// Maps the first `len` bytes of an opened, locked file.
    pub(crate) fn map_len(file: File, len: u64, path: &Path) -> Result<PoolFile> {
        map(file, len, &Location::file(path))
    }

    /// Base address of the mapping.
    pub(crate) fn base(&self) -> *mut u8 {
        match &self.mapping {
            Mapping::Shared(m) => m.as_mut_ptr(),
            Mapping::Sync { ptr, .. } => *ptr,
        }
    }

    /// Whether the mapping is MAP_SYNC (the file is on a DAX file system).
    pub(crate) fn is_dax(&self) -> bool {
        matches!(self.mapping, Mapping::Sync { .. })
    }
}

/// `fsync`s `file`, unless `faults` fails this durability point; `step` names it in the test
/// trace.
fn sync(file: &File, step: &'static str, faults: Option<&FaultPlan>) -> io::Result<()> {
    trace(step);
    if let Some(e) = faults.and_then(FaultPlan::next_point) {
        return Err(e);
    }
    file.sync_all()
}

/// `fsync`s the directory holding `path`, making a name created or removed in it durable.
fn sync_parent(path: &Path, faults: Option<&FaultPlan>) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    sync(&File::open(dir)?, "fsync directory", faults)
}

#[cfg(test)]
thread_local! {
    /// The durability steps of the file calls this thread made, in order, for tests.
    static TRACE: std::cell::RefCell<Vec<&'static str>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Records a step for this module's tests; nothing outside them.
#[inline(always)]
fn trace(_step: &'static str) {
    #[cfg(test)]
    TRACE.with(|t| t.borrow_mut().push(_step));
}

/// Reads `buf.len()` bytes at `offset`.
pub(crate) fn read_at(file: &File, buf: &mut [u8], offset: u64, location: &Location) -> Result<()> {
    file.read_exact_at(buf, offset)
        .map_err(|e| Error::io(location, "read", e))
}

fn lock(file: &File, location: &Location) -> Result<()> {
    // SAFETY: flock on an open descriptor has no memory-safety preconditions.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Err(Error::PoolInUse {
            location: location.clone(),
        })
    } else {
        Err(Error::io(location, "lock (flock)", err))
    }
}

/// Allocates the file's blocks now, so running out of space is an error here rather than a
/// SIGBUS on some later store into a sparse mapping.
fn reserve(file: &File, size: u64) -> io::Result<()> {
    let len =
        libc::off_t::try_from(size).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: plain system call on an open descriptor.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
    match rc {
        0 => Ok(()),
        // File systems without fallocate: fall back to a sparse file rather than fail.
        libc::EOPNOTSUPP | libc::ENOSYS => file.set_len(size),
        errno => Err(io::Error::from_raw_os_error(errno)),
    }
}

fn map(file: File, len: u64, location: &Location) -> Result<PoolFile> {
    // The crate builds for 64-bit targets only (see lib.rs), where every `u64` fits a `usize`.
    let len_usize = len as usize;
    if let Some(ptr) = map_sync(&file, len_usize) {
        return Ok(PoolFile {
            mapping: Mapping::Sync {
                ptr,
                len: len_usize,
            },
            _file: file,
        });
    }
    let raw = memmap2::MmapOptions::new()
        .len(len_usize)
        .map_raw(&file)
        .map_err(|e| Error::io(location, "mmap", e))?;
    Ok(PoolFile {
        mapping: Mapping::Shared(raw),
        _file: file,
    })
}

/// Tries a MAP_SYNC mapping, which only DAX file systems grant.
fn map_sync(file: &File, len: usize) -> Option<*mut u8> {
    // SAFETY: mapping a file we hold open; the kernel validates every argument. MAP_SHARED_VALIDATE
    // makes it refuse MAP_SYNC (rather than ignore it) where it is not supported.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED_VALIDATE | libc::MAP_SYNC,
            file.as_raw_fd(),
            0,
        )
    };
    (ptr != libc::MAP_FAILED).then_some(ptr as *mut u8)
}

/// Removes the temporary files that creates of `path` left behind when their process died
/// (each holds the pool's reserved space). One is stale only if the process its name records is
/// gone and nothing holds its lock: a live create keeps both. Best effort: failures are ignored.
fn remove_stale_temps(path: &Path) {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let prefix = format!(".{}.creating.", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .and_then(|rest| rest.split('.').next())
            .and_then(|pid| pid.parse::<libc::pid_t>().ok())
        else {
            continue;
        };
        if pid <= 0 || process_alive(pid) {
            continue;
        }
        let Ok(file) = File::open(entry.path()) else {
            continue;
        };
        // SAFETY: flock on an open descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0 {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether a process with this id exists (possibly one that reused the id: then the temporary
/// file is kept, which errs on the safe side).
fn process_alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

/// A hidden name beside `path`, unique to this process and call.
fn temp_name(path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.creating.{}.{n}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_syncs_the_file_before_linking_and_the_directory_after() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pool");
        let (file, temp) = PoolFile::create(&path, 1 << 20).unwrap();
        TRACE.with(|t| t.borrow_mut().clear());
        file.publish(&temp, &path, None).unwrap();
        let steps = TRACE.with(|t| t.borrow().clone());
        assert_eq!(steps, ["fsync file", "link", "fsync directory"]);
        assert!(path.exists() && !temp.exists());
    }

    #[test]
    fn publish_onto_a_taken_name_links_nothing_and_removes_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pool");
        let (file, temp) = PoolFile::create(&path, 1 << 20).unwrap();
        std::fs::write(&path, b"taken").unwrap();
        TRACE.with(|t| t.borrow_mut().clear());
        assert!(matches!(
            file.publish(&temp, &path, None),
            Err(Error::AlreadyExists { .. })
        ));
        assert_eq!(TRACE.with(|t| t.borrow().clone()), ["fsync file", "link"]);
        assert_eq!(std::fs::read(&path).unwrap(), b"taken");
        assert!(!temp.exists());
    }
}

//! Pool files: create, open, lock, map, and reserve their disk blocks as the pool uses them.
//!
//! # Disk space
//!
//! A pool file has its full length from its create on (the geometry is fixed then), but only
//! what the pool writes has disk blocks reserved: [`Space`] reserves them with
//! `posix_fallocate` before the first store into them, because a store through a shared
//! mapping into a hole of a sparse file turns a full file system into `SIGBUS`, which kills the
//! process, whereas a failed reservation is an error the allocation that needed it returns.
//! What is reserved when, and why it is enough, is the heap's to say (see `heap::space`).
//!
//! File systems without fallocate (`posix_fallocate` returns `EOPNOTSUPP`; glibc emulates it by
//! writing a byte per block wherever it can, so this is rare) keep the behaviour pools have
//! always had there: the file stays sparse, reservations do nothing, and a full file system
//! can still raise `SIGBUS` on such a file.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crate::error::{Error, Location, Result};
use crate::persist::FaultPlan;

/// An open, exclusively locked, mapped pool file. Unmapped and unlocked on drop.
pub(crate) struct PoolFile {
    // Field order: unmap before closing the file, which releases the lock.
    mapping: Mapping,
    /// Held open for the lock, which closing releases; shared with the pool's [`Space`].
    file: Arc<File>,
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
    /// Creates a pool file of `size` bytes, sparse (the caller reserves through [`Space`] what
    /// it writes), locked and mapped, under a temporary name beside `path`:
    /// [`publish`](Self::publish) gives it its name once it holds a complete pool, so no other
    /// opener ever sees a half-made file.
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
            file.set_len(size)
                .map_err(|e| Error::io(&location, "set the file's length", e))?;
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
            sync(&self.file, "fsync file", faults).map_err(|e| Error::io(&location, "fsync", e));
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

    /// What reserves this file's disk blocks, naming `location` in its errors.
    pub(crate) fn space(&self, location: Location, faults: Option<FaultPlan>) -> Space {
        Space {
            whole: AtomicBool::new(every_block_allocated(&self.file)),
            file: Some(Arc::clone(&self.file)),
            location,
            faults,
            unsupported: AtomicBool::new(false),
        }
    }
}

/// Reserves disk blocks of a pool's file before the pool first writes them.
///
/// A pool in memory has a `Space` too, which reserves nothing but counts and fails
/// reservations as its [`FaultPlan`] says, so the failure paths are the same with and without
/// a file.
pub(crate) struct Space {
    /// `None` for a pool in memory.
    file: Option<Arc<File>>,
    location: Location,
    faults: Option<FaultPlan>,
    /// The file system refused fallocate (`EOPNOTSUPP`): reservations do nothing from then on.
    unsupported: AtomicBool,
    /// Every block of the file is known to be allocated (see [`every_block_allocated`]), so a
    /// reservation has nothing to do: it skips the seek for a hole, which tmpfs answers by
    /// walking every page before it.
    whole: AtomicBool,
}

impl Space {
    /// The space of a pool in memory.
    pub(crate) fn memory(location: Location, faults: Option<FaultPlan>) -> Space {
        Space {
            file: None,
            location,
            faults,
            unsupported: AtomicBool::new(false),
            whole: AtomicBool::new(false),
        }
    }

    /// Whether every block of the file is allocated (always false in memory): then nothing
    /// needs reserving.
    pub(crate) fn is_whole(&self) -> bool {
        self.whole.load(Ordering::Relaxed)
    }

    /// Reserves the disk blocks of bytes `offset .. offset + len` of the file (nothing if `len`
    /// is 0). Cheap if they are reserved already. `what` names, in the error, what the space
    /// is for.
    ///
    /// # Errors
    /// [`Error::Io`] naming the file, with the operating system's error (`ENOSPC` when the file
    /// system is full): nothing was written.
    pub(crate) fn reserve(&self, offset: u64, len: u64, what: &'static str) -> Result<()> {
        if len == 0 {
            return Ok(());
        }
        let failure = self.faults.as_ref().and_then(FaultPlan::next_reservation);
        let result = match (failure, &self.file) {
            (Some(e), _) => Err(e),
            (None, None) => Ok(()),
            (None, Some(_)) if self.unsupported.load(Ordering::Relaxed) || self.is_whole() => {
                Ok(())
            }
            (None, Some(file)) => fallocate(file, offset, len).map(|supported| {
                if !supported {
                    self.unsupported.store(true, Ordering::Relaxed);
                } else if offset == 0 && every_block_allocated(file) {
                    // A reservation of the whole file (`reserve_all`): later ones are free.
                    self.whole.store(true, Ordering::Relaxed);
                }
            }),
        };
        result.map_err(|source| Error::Io {
            location: self.location.clone(),
            operation: what,
            source,
        })
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

/// Whether `file` is on tmpfs and has a page for every byte of its length, so that no part of
/// it is a hole. tmpfs counts exactly its data pages in `st_blocks` (a huge page as the pages
/// it covers, and no blocks for metadata), so a count that covers the length leaves no room for
/// a hole, once no page past the end is counted (see below). Disk file systems count their
/// metadata blocks too, so there the count proves nothing; they answer the seek for a hole from
/// their extent maps, cheaply, so nothing is lost by asking them.
fn every_block_allocated(file: &File) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const PAGE: u64 = 4096;
    // The largest folio tmpfs makes on x86-64: a PMD-sized huge page, aligned to its size in
    // the file. A length that is a multiple of it ends between folios, so no folio straddles
    // the end; one that did would keep its pages past the end through the truncation below
    // whenever it cannot be split (anyone holding a reference to it, say a pipe it was spliced
    // into), and they would count as the pages of a hole.
    const LARGEST_FOLIO: u64 = 2 << 20;
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    let fd = file.as_raw_fd();
    // SAFETY: `fs` is a plain C struct that fstatfs fills on success; read only then.
    let on_tmpfs = unsafe {
        let mut fs: libc::statfs = std::mem::zeroed();
        libc::fstatfs(fd, &mut fs) == 0 && fs.f_type as i64 == TMPFS_MAGIC
    };
    if !on_tmpfs {
        return false;
    }
    use std::os::unix::fs::MetadataExt;
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return false;
    };
    if len % LARGEST_FOLIO != 0 {
        return false;
    }
    // Pages past the end count too (a fallocate with FALLOC_FL_KEEP_SIZE makes them), and a
    // file could hide its holes behind them: a truncation to the length it has frees every
    // page past it, and changes nothing else.
    if file.set_len(len).is_err() {
        return false;
    }
    let Ok(meta) = file.metadata() else {
        return false;
    };
    meta.len() == len && meta.blocks().saturating_mul(512) >= len.div_ceil(PAGE) * PAGE
}

/// Allocates the blocks of `offset .. offset + len` now, so running out of space is an error
/// here rather than a SIGBUS on some later store into a sparse mapping. `Ok(false)` if the file
/// system has no fallocate: the range stays as it was (sparse), as pools have always been
/// there.
fn fallocate(file: &File, offset: u64, len: u64) -> io::Result<bool> {
    let invalid = |_| io::Error::from(io::ErrorKind::InvalidInput);
    let start = libc::off_t::try_from(offset).map_err(invalid)?;
    let len = libc::off_t::try_from(len).map_err(invalid)?;
    // Bytes before the first hole have their blocks (a page that a store made dirty has its
    // block reserved too): start the fallocate at that hole, or skip it if there is none in
    // the range. On tmpfs the fallocate of pages that are there costs several times the seek,
    // page by page, and at open the chunks in use are reserved again. An unwritten extent
    // that a fallocate made counts as a hole, so on most disk file systems the fallocate runs
    // over the rest, and is cheap there.
    // SAFETY: plain system call on an open descriptor.
    let hole = unsafe { libc::lseek(file.as_raw_fd(), start, libc::SEEK_HOLE) };
    let skip = if hole > start { hole - start } else { 0 };
    if skip >= len {
        return Ok(true);
    }
    // SAFETY: plain system call on an open descriptor.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), start + skip, len - skip) };
    match rc {
        0 => Ok(true),
        libc::EOPNOTSUPP | libc::ENOSYS => Ok(false),
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
            file: Arc::new(file),
        });
    }
    let raw = memmap2::MmapOptions::new()
        .len(len_usize)
        .map_raw(&file)
        .map_err(|e| Error::io(location, "mmap", e))?;
    Ok(PoolFile {
        mapping: Mapping::Shared(raw),
        file: Arc::new(file),
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
    fn a_space_reserves_the_blocks_of_its_ranges_only() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pool");
        let (file, temp) = PoolFile::create(&path, 8 << 20).unwrap();
        let blocks = || std::fs::metadata(&temp).unwrap().blocks() * 512;
        assert_eq!(std::fs::metadata(&temp).unwrap().len(), 8 << 20);
        assert!(blocks() < 64 << 10, "a new file is sparse: {}", blocks());
        let plan = FaultPlan::new();
        let space = file.space(Location::file(&path), Some(plan.clone()));
        space.reserve(1 << 20, 1 << 20, "test").unwrap();
        assert!((1 << 20..2 << 20).contains(&blocks()), "{}", blocks());
        // Again: nothing more (the range has no hole), and the plan counts both.
        space.reserve(1 << 20, 1 << 20, "test").unwrap();
        assert!(blocks() < 2 << 20);
        assert_eq!(plan.reservations(), 2);
        plan.fail_reservations_from(2);
        match space.reserve(4 << 20, 1 << 20, "test") {
            Err(Error::Io {
                location: Location::File(p),
                operation: "test",
                source,
            }) => {
                assert_eq!(p, path);
                assert_eq!(source.raw_os_error(), Some(libc::ENOSPC));
            }
            other => panic!("{other:?}"),
        }
        assert!(blocks() < 2 << 20, "a failed reservation reserves nothing");
        drop(file);
        std::fs::remove_file(&temp).unwrap();
    }

    /// Punches a hole of `len` bytes at `offset` into `file`.
    fn punch(file: &File, offset: u64, len: u64) {
        // SAFETY: plain system call on an open descriptor.
        let rc = unsafe {
            libc::fallocate(
                file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                offset as libc::off_t,
                len as libc::off_t,
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    }

    #[test]
    fn a_whole_tmpfs_file_needs_no_reservation_until_it_has_a_hole() {
        let shm = Path::new("/dev/shm");
        if !shm.is_dir() {
            return;
        }
        let dir = tempfile::tempdir_in(shm).unwrap();
        let path = dir.path().join("p.pool");
        let (file, temp) = PoolFile::create(&path, 8 << 20).unwrap();
        let space = || file.space(Location::file(&path), None);
        assert!(!space().is_whole(), "a new file is sparse");
        let first = space();
        first.reserve(0, 8 << 20, "test").unwrap();
        assert!(first.is_whole(), "reserving the whole file makes it whole");
        assert!(space().is_whole(), "and the next open sees it");
        punch(&file.file, 3 << 20, 4096);
        assert!(!space().is_whole(), "a hole anywhere is seen");
        // A page past the end does not make up for the hole.
        // SAFETY: plain system call on an open descriptor.
        let rc = unsafe {
            libc::fallocate(
                file.file.as_raw_fd(),
                libc::FALLOC_FL_KEEP_SIZE,
                8 << 20,
                4096,
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        assert!(
            !space().is_whole(),
            "a hole hidden behind a page past the end is seen"
        );
        let again = space();
        again.reserve(2 << 20, 2 << 20, "test").unwrap();
        assert!(
            space().is_whole(),
            "the reservation over the hole filled it"
        );
        drop(file);
        std::fs::remove_file(&temp).unwrap();
    }

    #[test]
    fn a_tmpfs_file_whose_length_could_end_inside_a_huge_page_is_never_taken_as_whole() {
        let shm = Path::new("/dev/shm");
        if !shm.is_dir() {
            return;
        }
        let dir = tempfile::tempdir_in(shm).unwrap();
        let path = dir.path().join("p.pool");
        // 3 MiB: a 2 MiB page over 2 .. 4 MiB would hold pages past the end that a truncation
        // cannot free while anyone holds it, and that count as blocks.
        let (file, temp) = PoolFile::create(&path, 3 << 20).unwrap();
        let space = file.space(Location::file(&path), None);
        space.reserve(0, 3 << 20, "test").unwrap();
        assert!(!space.is_whole());
        assert!(!file.space(Location::file(&path), None).is_whole());
        drop(file);
        std::fs::remove_file(&temp).unwrap();
    }

    #[test]
    fn a_whole_file_is_taken_as_whole_on_tmpfs_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pool");
        let (file, temp) = PoolFile::create(&path, 1 << 20).unwrap();
        let space = file.space(Location::file(&path), None);
        space.reserve(0, 1 << 20, "test").unwrap();
        // SAFETY: as in `every_block_allocated`.
        let on_tmpfs = unsafe {
            let mut fs: libc::statfs = std::mem::zeroed();
            libc::fstatfs(file.file.as_raw_fd(), &mut fs) == 0 && fs.f_type as i64 == 0x0102_1994
        };
        assert_eq!(space.is_whole(), on_tmpfs);
        drop(file);
        std::fs::remove_file(&temp).unwrap();
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

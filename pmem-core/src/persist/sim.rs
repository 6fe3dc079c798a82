//! The simulated persistence domain, for crash testing.
//!
//! A simulated pool runs over a volatile image (ordinary memory standing in for the CPU caches
//! and the mapping) and keeps a second, persisted image: what the persistent media would hold.
//! `flush` snapshots the lines it covers as *pending*; `fence` copies the pending snapshots into
//! the persisted image. A crash at a fence leaves the persisted image plus any subset of the
//! words that were pending or merely dirty (stored but never flushed): real caches may write any
//! line back at any moment, and an aligned 8-byte store is the unit that cannot tear.
//!
//! The simulation is deliberately harsher than hardware in one respect: it does not keep stores
//! to the same cache line in order, so a crash image may hold a later word of a line without an
//! earlier one. A protocol that survives it survives the hardware.

use std::alloc::{self, Layout};
use std::collections::BTreeMap;
use std::fmt;
use std::ptr::NonNull;
use std::sync::Mutex;

use super::CACHE_LINE;

const PAGE: usize = 4096;
const WORD: usize = 8;
/// Snapshots kept per line between two fences: the first and the latest few are enough to offer
/// every distinct value a crash could expose without unbounded memory.
const MAX_SNAPSHOTS_PER_LINE: usize = 4;

/// The bytes of a pool held in memory, page-aligned: the volatile image of a simulated pool, or
/// a crash image to open with [`PoolBuilder::open_image`](crate::PoolBuilder::open_image).
///
/// An image read from a pool file with [`read_pool_file`](crate::check::read_pool_file) is a
/// private copy-on-write mapping of the file: pages cost memory only once written, and writes
/// never reach the file.
pub struct PoolImage {
    ptr: NonNull<u8>,
    len: usize,
    /// Set when the bytes are a private mapping of a file rather than an allocation of ours.
    mapped: Option<PrivateMapping>,
}

/// A pool file mapped copy-on-write, with the open file (and the shared lock the caller took on
/// it) kept for as long as the mapping: a pool that honours the lock is not written meanwhile,
/// so the pages not yet copied keep showing the bytes the file had.
struct PrivateMapping {
    _map: memmap2::MmapMut,
    _file: std::fs::File,
}

// SAFETY: `PoolImage` owns its allocation, or its private mapping, exclusively, like a
// `Box<[u8]>`.
unsafe impl Send for PoolImage {}
// SAFETY: shared access only reads, like `&[u8]`.
unsafe impl Sync for PoolImage {}

impl PoolImage {
    fn layout(len: usize) -> Layout {
        Layout::from_size_align(len.max(1).next_multiple_of(PAGE), PAGE)
            .expect("image size overflows")
    }

    /// A zero-filled image of `len` bytes.
    ///
    /// # Panics
    /// If `len` rounded up to a page overflows; aborts if the memory cannot be allocated. See
    /// [`try_zeroed`](Self::try_zeroed).
    pub fn zeroed(len: usize) -> PoolImage {
        let layout = Self::layout(len);
        Self::try_zeroed(len).unwrap_or_else(|| alloc::handle_alloc_error(layout))
    }

    /// A zero-filled image of `len` bytes, or `None` if that much memory cannot be had.
    pub fn try_zeroed(len: usize) -> Option<PoolImage> {
        let size = len.max(1).checked_next_multiple_of(PAGE)?;
        let layout = Layout::from_size_align(size, PAGE).ok()?;
        let ptr = match spare::take(layout.size()) {
            Some(ptr) => {
                // SAFETY: a spare buffer of exactly this layout, owned by us now.
                unsafe { ptr.as_ptr().write_bytes(0, layout.size()) };
                ptr
            }
            // SAFETY: the layout has a non-zero size.
            None => NonNull::new(unsafe { alloc::alloc_zeroed(layout) })?,
        };
        Some(PoolImage {
            ptr,
            len,
            mapped: None,
        })
    }

    /// An image of the first `len` bytes of `file`, mapped copy-on-write. The caller holds a
    /// shared lock on `file`, which the image keeps until dropped.
    pub(crate) fn map_private(file: std::fs::File, len: usize) -> std::io::Result<PoolImage> {
        if len == 0 {
            return Ok(PoolImage::zeroed(0));
        }
        // SAFETY: a private mapping: our writes never reach the file. Writers that honour the
        // pool lock are kept out while the image (and the file, with its lock) lives; one that
        // ignores it could change pages we have not copied, as it could for any mapped pool.
        let mut map = unsafe { memmap2::MmapOptions::new().len(len).map_copy(&file)? };
        let ptr = NonNull::new(map.as_mut_ptr()).expect("a mapping is never at address 0");
        Ok(PoolImage {
            ptr,
            len,
            mapped: Some(PrivateMapping {
                _map: map,
                _file: file,
            }),
        })
    }

    /// An image holding a copy of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> PoolImage {
        let layout = Self::layout(bytes.len());
        let ptr = spare::take(layout.size()).unwrap_or_else(|| {
            // SAFETY: the layout has a non-zero size.
            NonNull::new(unsafe { alloc::alloc(layout) })
                .unwrap_or_else(|| alloc::handle_alloc_error(layout))
        });
        // SAFETY: the buffer has room for `bytes.len()` bytes and does not overlap `bytes`; the
        // copy initialises every byte `as_bytes` exposes (the rounding tail is never read).
        unsafe {
            ptr.as_ptr()
                .copy_from_nonoverlapping(bytes.as_ptr(), bytes.len())
        };
        PoolImage {
            ptr,
            len: bytes.len(),
            mapped: None,
        }
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the image is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `ptr` is a live allocation of at least `len` initialised bytes owned by `self`.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes, mutably: to damage an image on purpose in a test, for instance.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_bytes`, and `&mut self` makes the access unique.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    pub(crate) fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn words(&self) -> &[u64] {
        // SAFETY: the allocation is page-aligned, so aligned for u64, and `len / 8` words fit.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr() as *const u64, self.len / WORD) }
    }

    fn words_mut(&mut self) -> &mut [u64] {
        // SAFETY: as in `words`, with unique access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr() as *mut u64, self.len / WORD) }
    }
}

impl Drop for PoolImage {
    fn drop(&mut self) {
        if self.mapped.is_some() {
            return; // the mapping unmaps itself
        }
        let layout = Self::layout(self.len);
        if let Some(ptr) = spare::give(layout.size(), self.ptr) {
            // SAFETY: allocated with this same layout (`zeroed`, `from_bytes` or a spare).
            unsafe { alloc::dealloc(ptr.as_ptr(), layout) };
        }
    }
}

/// A few freed image buffers kept for reuse: a crash test makes thousands of same-sized images,
/// and a fresh large allocation is fresh pages, each faulted in and zeroed by the kernel.
mod spare {
    use std::ptr::NonNull;
    use std::sync::Mutex;

    const KEEP: usize = 8;

    struct Buffer(usize, NonNull<u8>);
    // SAFETY: a spare buffer is owned by the list alone until taken.
    unsafe impl Send for Buffer {}

    static SPARE: Mutex<Vec<Buffer>> = Mutex::new(Vec::new());

    /// A spare buffer of exactly `size` bytes (page-aligned layout), if one is kept.
    pub(super) fn take(size: usize) -> Option<NonNull<u8>> {
        let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
        let i = spare.iter().position(|b| b.0 == size)?;
        Some(spare.swap_remove(i).1)
    }

    /// Keeps a buffer for reuse, or hands it back (`Some`) to be freed.
    pub(super) fn give(size: usize, ptr: NonNull<u8>) -> Option<NonNull<u8>> {
        let mut spare = SPARE.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < KEEP {
            spare.push(Buffer(size, ptr));
            None
        } else {
            Some(ptr)
        }
    }
}

impl Clone for PoolImage {
    fn clone(&self) -> Self {
        PoolImage::from_bytes(self.as_bytes())
    }
}

impl fmt::Debug for PoolImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PoolImage({} bytes)", self.len)
    }
}

/// Called at every fence of a simulated pool, before the fence takes effect.
pub type FenceHook = Box<dyn FnMut(&CrashPoint<'_>) + Send>;

struct SimState {
    persisted: PoolImage,
    /// Line index -> snapshots of the line taken at each flush since the last fence, oldest first.
    pending: BTreeMap<usize, Vec<[u64; CACHE_LINE / WORD]>>,
    fences: u64,
    hook: Option<FenceHook>,
}

/// The simulated backend of a [`Domain`](super::Domain).
pub(crate) struct SimDomain {
    base: *mut u8,
    len: usize,
    state: Mutex<SimState>,
}

// SAFETY: `base` points at the volatile image, owned by the pool that owns this domain; it is
// only read here, by the pool's writer (flush and fence run with the pool's write access).
unsafe impl Send for SimDomain {}
// SAFETY: as above; the mutable state is behind a mutex.
unsafe impl Sync for SimDomain {}

impl SimDomain {
    /// A domain over the volatile image at `base`, whose current contents count as persisted.
    ///
    /// # Safety
    /// `base .. base + len` must be a live, 8-byte aligned allocation for the domain's life.
    ///
    /// The domain models the whole words of the image; a pool of a size that is not a multiple
    /// of 8 never writes its last few bytes (the heap ends on a chunk boundary), so the partial
    /// word at the end keeps, in every crash image, the bytes it had when the domain was made.
    pub(crate) unsafe fn new(base: *mut u8, len: usize) -> SimDomain {
        assert!(base as usize % WORD == 0, "the image is page-aligned");
        // SAFETY: the caller guarantees the range is live and initialised.
        let current = unsafe { std::slice::from_raw_parts(base, len) };
        let persisted = PoolImage::from_bytes(current);
        SimDomain {
            base,
            len,
            state: Mutex::new(SimState {
                persisted,
                pending: BTreeMap::new(),
                fences: 0,
                hook: None,
            }),
        }
    }

    pub(crate) fn region(&self) -> (*mut u8, u64) {
        (self.base, self.len as u64)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, SimState> {
        // A panicking hook poisons the mutex; the state itself is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn volatile_words(&self) -> &[u64] {
        // SAFETY: `new`'s contract; the writer, who is the caller, does not store while we read.
        unsafe { std::slice::from_raw_parts(self.base as *const u64, self.len / WORD) }
    }

    /// Snapshots every line of `[offset, offset + len)` as pending; returns the line count.
    pub(crate) fn flush(&self, offset: u64, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        let words = self.volatile_words();
        let per_line = CACHE_LINE / WORD;
        let first = offset as usize / CACHE_LINE;
        let last = (offset + len - 1) as usize / CACHE_LINE;
        let mut state = self.state();
        for line in first..=last {
            let mut snap = [0u64; CACHE_LINE / WORD];
            let start = (line * per_line).min(words.len());
            let end = (start + per_line).min(words.len());
            snap[..end - start].copy_from_slice(&words[start..end]);
            let snaps = state.pending.entry(line).or_default();
            if snaps.len() == MAX_SNAPSHOTS_PER_LINE {
                snaps.remove(1);
            }
            snaps.push(snap);
        }
        (last - first + 1) as u64
    }

    /// Runs the hook on the state just before this fence, then persists the pending lines.
    pub(crate) fn fence(&self) {
        let mut state = self.state();
        if let Some(mut hook) = state.hook.take() {
            hook(&CrashPoint {
                sim: self,
                state: &state,
            });
            state.hook = Some(hook);
        }
        let SimState {
            persisted, pending, ..
        } = &mut *state;
        let per_line = CACHE_LINE / WORD;
        let words = persisted.words_mut();
        for (&line, snaps) in pending.iter() {
            let latest = snaps.last().expect("a pending line has a snapshot");
            let start = (line * per_line).min(words.len());
            let end = (start + per_line).min(words.len());
            words[start..end].copy_from_slice(&latest[..end - start]);
        }
        pending.clear();
        state.fences += 1;
    }

    /// Installs (or removes) the fence hook.
    pub(crate) fn set_hook(&self, hook: Option<FenceHook>) {
        self.state().hook = hook;
    }

    /// Runs `f` on the current state, as if the machine crashed now.
    pub(crate) fn crash_now<T>(&self, f: impl FnOnce(&CrashPoint<'_>) -> T) -> T {
        let state = self.state();
        f(&CrashPoint {
            sim: self,
            state: &state,
        })
    }

    /// Fences completed so far.
    pub(crate) fn fences(&self) -> u64 {
        self.state().fences
    }
}

impl super::Persist for SimDomain {
    fn flush(&self, offset: u64, len: u64) -> u64 {
        SimDomain::flush(self, offset, len)
    }

    fn fence(&self) -> u64 {
        SimDomain::fence(self);
        0
    }

    /// Drops the pending snapshots, as Linux drops pages whose write-back failed: they reach
    /// the persisted image only if flushed again (their words stay dirty, so a crash image may
    /// still hold them, as a cache may still write them back).
    fn lose_pending(&self) {
        self.state().pending.clear();
    }

    /// The simulation itself never fails; a [`FaultPlan`](super::FaultPlan) makes it.
    fn take_failure(&self) -> Option<std::io::Error> {
        None
    }

    fn mode(&self) -> super::FlushMode {
        super::FlushMode::Simulated
    }
}

/// The state of a simulated pool at one instant, from which crash images are made.
///
/// Passed to the fence hook of a simulated pool (see [`crash`](crate::crash)); a crash image is
/// what the persistent media could hold if power failed at that instant.
pub struct CrashPoint<'a> {
    sim: &'a SimDomain,
    state: &'a SimState,
}

impl CrashPoint<'_> {
    /// How many fences completed before this instant.
    pub fn fence_index(&self) -> u64 {
        self.state.fences
    }

    /// The image if nothing pending or dirty reached the media: only what earlier fences made
    /// durable.
    pub fn nothing_pending(&self) -> PoolImage {
        self.state.persisted.clone()
    }

    /// The image if every store made so far reached the media.
    pub fn everything(&self) -> PoolImage {
        // The volatile image is exactly that.
        // SAFETY: `SimDomain::new`'s contract: `len` live bytes at `base`, not stored to while
        // a crash point is inspected (the writer is the one fencing).
        PoolImage::from_bytes(unsafe { std::slice::from_raw_parts(self.sim.base, self.sim.len) })
    }

    /// The image if a random subset of the pending and dirty words reached the media. The subset
    /// is a function of `seed` alone, so a failing image can be made again from its seed.
    pub fn random_subset(&self, seed: u64) -> PoolImage {
        let mut rng = SplitMix64(seed);
        let mut image = self.state.persisted.clone();
        let words = image.words_mut();
        self.for_each_changed_word(|index, candidates| {
            let r = rng.next();
            if r & 1 == 1 {
                words[index] = candidates[((r >> 1) % candidates.len() as u64) as usize];
            }
        });
        image
    }

    /// How many words could differ between crash images at this instant.
    pub fn uncertain_words(&self) -> usize {
        let mut n = 0;
        self.for_each_changed_word(|_, _| n += 1);
        n
    }

    /// Calls `f(word index, values other than the persisted one that the word could hold)` for
    /// every word where such values exist, in increasing index order.
    fn for_each_changed_word(&self, mut f: impl FnMut(usize, &[u64])) {
        let persisted = self.state.persisted.words();
        let volatile = self.sim.volatile_words();
        let per_line = CACHE_LINE / WORD;
        let per_block = PAGE / WORD;
        let mut candidates: Vec<u64> = Vec::with_capacity(MAX_SNAPSHOTS_PER_LINE + 1);
        let mut pending = self.state.pending.iter().peekable();
        for block_start in (0..persisted.len()).step_by(per_block) {
            let block_end = (block_start + per_block).min(persisted.len());
            let first_line = block_start / per_line;
            let end_line = block_end.div_ceil(per_line);
            let has_pending = pending.peek().is_some_and(|(&line, _)| line < end_line);
            if !has_pending && volatile[block_start..block_end] == persisted[block_start..block_end]
            {
                continue;
            }
            for line in first_line..end_line {
                let snaps = pending.next_if(|(&l, _)| l == line).map(|(_, snaps)| snaps);
                for index in line * per_line..((line + 1) * per_line).min(block_end) {
                    candidates.clear();
                    let old = persisted[index];
                    let mut offer = |v: u64| {
                        if v != old && !candidates.contains(&v) {
                            candidates.push(v);
                        }
                    };
                    if let Some(snaps) = snaps {
                        for snap in snaps {
                            offer(snap[index - line * per_line]);
                        }
                    }
                    offer(volatile[index]);
                    if !candidates.is_empty() {
                        f(index, &candidates);
                    }
                }
            }
        }
    }
}

impl fmt::Debug for CrashPoint<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CrashPoint")
            .field("fence_index", &self.fence_index())
            .finish()
    }
}

/// A tiny deterministic generator (splitmix64): crash subsets must replay from a seed on any
/// platform and any version of any dependency.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        volatile: PoolImage,
        sim: SimDomain,
    }

    fn fixture(len: usize) -> Fixture {
        let mut volatile = PoolImage::zeroed(len);
        // SAFETY: the image is live, page-aligned, and outlives the domain (same struct, and the
        // domain is dropped first by field order only in use, never used after).
        let sim = unsafe { SimDomain::new(volatile.as_mut_ptr(), len) };
        Fixture { volatile, sim }
    }

    impl Fixture {
        fn store(&mut self, offset: usize, value: u64) {
            let p = self.volatile.as_mut_ptr().wrapping_add(offset) as *mut u64;
            // SAFETY: in bounds and aligned in every test below.
            unsafe { p.write_volatile(value) };
        }
    }

    fn word(image: &PoolImage, offset: usize) -> u64 {
        u64::from_le_bytes(image.as_bytes()[offset..offset + 8].try_into().unwrap())
    }

    #[test]
    fn unflushed_store_is_absent_from_nothing_pending_image() {
        let mut f = fixture(8192);
        f.store(128, 7);
        f.sim.crash_now(|cp| {
            assert_eq!(word(&cp.nothing_pending(), 128), 0);
            assert_eq!(word(&cp.everything(), 128), 7);
            assert_eq!(cp.uncertain_words(), 1);
        });
    }

    #[test]
    fn flushed_but_unfenced_store_is_uncertain() {
        let mut f = fixture(8192);
        f.store(64, 5);
        f.sim.flush(64, 8);
        f.sim.crash_now(|cp| {
            assert_eq!(word(&cp.nothing_pending(), 64), 0);
            let seen: std::collections::HashSet<u64> = (0..64)
                .map(|seed| word(&cp.random_subset(seed), 64))
                .collect();
            assert_eq!(seen, [0, 5].into_iter().collect());
        });
    }

    #[test]
    fn fenced_store_is_in_every_later_image() {
        let mut f = fixture(8192);
        f.store(0, 11);
        f.sim.flush(0, 8);
        f.sim.fence();
        f.store(4096, 12); // dirty, never flushed
        f.sim.crash_now(|cp| {
            assert_eq!(cp.fence_index(), 1);
            assert_eq!(word(&cp.nothing_pending(), 0), 11);
            assert_eq!(word(&cp.everything(), 0), 11);
            for seed in 0..32 {
                assert_eq!(word(&cp.random_subset(seed), 0), 11);
            }
        });
    }

    #[test]
    fn a_store_after_the_flush_is_not_made_durable_by_the_fence() {
        let mut f = fixture(4096);
        f.store(0, 1);
        f.sim.flush(0, 8);
        f.store(0, 2);
        f.sim.fence();
        f.sim.crash_now(|cp| {
            assert_eq!(word(&cp.nothing_pending(), 0), 1);
            assert_eq!(word(&cp.everything(), 0), 2);
        });
    }

    #[test]
    fn random_subsets_replay_from_their_seed() {
        let mut f = fixture(16384);
        for i in 0..200 {
            f.store(i * 8 * 7 % 16384 / 8 * 8, i as u64 + 1);
        }
        f.sim.flush(0, 8192);
        f.sim.crash_now(|cp| {
            let a = cp.random_subset(42);
            let b = cp.random_subset(42);
            let c = cp.random_subset(43);
            assert_eq!(a.as_bytes(), b.as_bytes());
            assert_ne!(a.as_bytes(), c.as_bytes());
        });
    }

    #[test]
    fn hook_sees_state_before_the_fence() {
        let mut f = fixture(4096);
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        f.sim.set_hook(Some(Box::new(move |cp: &CrashPoint<'_>| {
            log.lock()
                .unwrap()
                .push((cp.fence_index(), word(&cp.nothing_pending(), 0)));
        })));
        f.store(0, 9);
        f.sim.flush(0, 8);
        f.sim.fence();
        f.sim.fence();
        assert_eq!(*seen.lock().unwrap(), vec![(0, 0), (1, 9)]);
        assert_eq!(f.sim.fences(), 2);
    }
}

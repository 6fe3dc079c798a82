//! The write set: a transaction's writes to existing objects, kept in DRAM until it commits.
//!
//! A range the transaction writes gets a *shadow*, a DRAM copy made when it is first written.
//! Writes go to the shadow and reads of it see the shadow, so the pool itself keeps the old
//! bytes until the commit: the shadows go to the log as redo entries with the commit record,
//! one fence makes all of it durable, and only then are they copied into place. Nothing needs
//! undoing on abort or after a crash, and a transaction costs one fence however many ranges it
//! writes.
//!
//! Live shadows never overlap: a write or read that overlaps shadows without lying inside one
//! merges them, with the pool's bytes between them, into a shadow of their union. A shadow's
//! bytes never move while the transaction runs (they live in an arena that only grows until the
//! transaction ends), so a reference into a shadow that a merge replaced stays valid; it is not
//! written again, since every write goes through a `&mut` borrow of the transaction, which ends
//! every reference first, and then reaches the merged shadow. A shadow's address is congruent to
//! its pool offset modulo its alignment (at least a cache line), so every value inside it is as
//! aligned as in the pool; a request for a stricter alignment merges it into a new shadow.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ptr::NonNull;

/// Shadows are at least this aligned relative to their pool offset.
const MIN_ALIGN: u64 = 64;
/// Size of an arena chunk, unless one shadow needs more.
const CHUNK: usize = 64 * 1024;
/// Up to this many shadows are kept in a vector and searched linearly.
const SMALL: usize = 16;

/// One shadow: `len` bytes standing for pool bytes `[start, start + len)`.
#[derive(Debug, Clone, Copy)]
struct Shadow {
    start: u64,
    len: u64,
    /// Its address is congruent to `start` modulo this power of two.
    align: u64,
    ptr: NonNull<u8>,
}

impl Shadow {
    fn end(&self) -> u64 {
        self.start + self.len
    }

    /// Whether it holds `[start, end)` at alignment `align`.
    fn holds(&self, start: u64, end: u64, align: u64) -> bool {
        self.start <= start && end <= self.end() && align <= self.align
    }

    fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start < end && start < self.end()
    }

    /// The address of pool offset `at`, which lies inside.
    fn at(&self, at: u64) -> *mut u8 {
        // In bounds: `at - start < len`, the shadow's size.
        self.ptr.as_ptr().wrapping_add((at - self.start) as usize)
    }
}

/// The live shadows, disjoint, found by the ranges they cover.
#[derive(Debug, Default)]
struct Index {
    /// Used while there are few.
    small: Vec<Shadow>,
    /// By start, once there are many.
    big: BTreeMap<u64, Shadow>,
}

impl Index {
    fn is_empty(&self) -> bool {
        self.small.is_empty() && self.big.is_empty()
    }

    /// The shadow holding `[start, end)`, if one does.
    #[inline]
    fn holding(&self, start: u64, end: u64, align: u64) -> Option<Shadow> {
        if self.big.is_empty() {
            return self
                .small
                .iter()
                .find(|s| s.holds(start, end, align))
                .copied();
        }
        let (_, s) = self.big.range(..=start).next_back()?;
        s.holds(start, end, align).then_some(*s)
    }

    /// Whether any shadow overlaps `[start, end)`.
    #[inline]
    fn overlaps(&self, start: u64, end: u64) -> bool {
        if self.big.is_empty() {
            return self.small.iter().any(|s| s.overlaps(start, end));
        }
        self.big
            .range(..end)
            .next_back()
            .is_some_and(|(_, s)| s.overlaps(start, end))
    }

    /// Removes and returns every shadow overlapping `[start, end)`.
    fn take_overlapping(&mut self, start: u64, end: u64) -> Vec<Shadow> {
        if self.big.is_empty() {
            let mut taken = Vec::new();
            self.small.retain(|s| {
                let hit = s.overlaps(start, end);
                if hit {
                    taken.push(*s);
                }
                !hit
            });
            return taken;
        }
        let starts: Vec<u64> = self
            .big
            .range(..end)
            .rev()
            .take_while(|(_, s)| s.end() > start)
            .map(|(&k, _)| k)
            .collect();
        starts
            .into_iter()
            .filter_map(|k| self.big.remove(&k))
            .collect()
    }

    fn insert(&mut self, shadow: Shadow) {
        if self.big.is_empty() && self.small.len() < SMALL {
            self.small.push(shadow);
            return;
        }
        if self.big.is_empty() {
            for s in self.small.drain(..) {
                self.big.insert(s.start, s);
            }
        }
        self.big.insert(shadow.start, shadow);
    }

    fn clear(&mut self) {
        self.small.clear();
        if !self.big.is_empty() {
            self.big.clear();
        }
    }

    fn iter(&self) -> impl Iterator<Item = &Shadow> {
        self.small.iter().chain(self.big.values())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.small.len() + self.big.len()
    }
}

/// A block of DRAM shadows are carved from.
#[derive(Debug)]
struct Chunk {
    ptr: NonNull<u8>,
    layout: Layout,
    used: usize,
}

impl Chunk {
    fn new(size: usize, align: usize) -> Chunk {
        let layout = Layout::from_size_align(size, align)
            .unwrap_or_else(|_| panic!("shadow chunk of {size} bytes aligned to {align}"));
        // SAFETY: the layout's size is not zero (callers ask for at least one byte).
        let ptr = unsafe { alloc(layout) };
        let ptr = NonNull::new(ptr).unwrap_or_else(|| handle_alloc_error(layout));
        Chunk {
            ptr,
            layout,
            used: 0,
        }
    }

    /// `len` bytes whose address is congruent to `offset` modulo `align`, if they fit.
    fn carve(&mut self, len: usize, offset: u64, align: u64) -> Option<NonNull<u8>> {
        let base = self.ptr.as_ptr() as usize;
        let here = base + self.used;
        let pad = ((offset as usize).wrapping_sub(here)) & (align as usize - 1);
        let end = self.used.checked_add(pad)?.checked_add(len)?;
        if end > self.layout.size() {
            return None;
        }
        // In bounds: `used + pad + len <= size`.
        let ptr = self.ptr.as_ptr().wrapping_add(self.used + pad);
        self.used = end;
        NonNull::new(ptr)
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Shadow memory: chunks carved in order, all given back when the transaction ends (the first
/// is kept for the next one).
#[derive(Debug, Default)]
struct Arena {
    chunks: Vec<Chunk>,
}

impl Arena {
    fn carve(&mut self, len: u64, offset: u64, align: u64) -> NonNull<u8> {
        let len = usize::try_from(len.max(1)).expect("a shadow fits in memory");
        if let Some(ptr) = self
            .chunks
            .last_mut()
            .and_then(|c| c.carve(len, offset, align))
        {
            return ptr;
        }
        let chunk_align = (align as usize).max(4096);
        let size = len
            .checked_add(align as usize)
            .expect("a shadow fits in memory")
            .max(CHUNK);
        let mut chunk = Chunk::new(size, chunk_align);
        let ptr = chunk
            .carve(len, offset, align)
            .expect("a fresh chunk holds the shadow it was made for");
        self.chunks.push(chunk);
        ptr
    }

    fn clear(&mut self) {
        self.chunks.truncate(1);
        if let Some(first) = self.chunks.first_mut() {
            if first.layout.size() > 4 * CHUNK {
                self.chunks.clear();
            } else {
                first.used = 0;
            }
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    index: Index,
    arena: Arena,
}

impl Inner {
    /// Makes one shadow hold `[start, end)` at alignment `align`, merging the shadows that
    /// overlap it; returns it.
    ///
    /// # Safety
    /// `pool` is the pool's base address and `[start, end)` lies inside the pool; nothing writes
    /// the pool concurrently.
    unsafe fn merge(&mut self, pool: *const u8, start: u64, end: u64, align: u64) -> Shadow {
        let old = self.index.take_overlapping(start, end);
        let union_start = old.iter().map(|s| s.start).fold(start, u64::min);
        let union_end = old.iter().map(|s| s.end()).fold(end, u64::max);
        let align = old
            .iter()
            .map(|s| s.align)
            .fold(align.max(MIN_ALIGN), u64::max);
        let len = union_end - union_start;
        let ptr = self.arena.carve(len, union_start, align);
        // SAFETY: the union lies inside the pool (each part does, and they overlap), and the
        // shadow is `len` bytes of fresh memory, disjoint from the pool and from every shadow.
        unsafe {
            std::ptr::copy_nonoverlapping(
                pool.add(union_start as usize),
                ptr.as_ptr(),
                len as usize,
            );
        }
        let merged = Shadow {
            start: union_start,
            len,
            align,
            ptr,
        };
        for s in &old {
            // SAFETY: `s` lies inside the union; shadows are distinct allocations.
            unsafe {
                std::ptr::copy_nonoverlapping(s.ptr.as_ptr(), merged.at(s.start), s.len as usize)
            };
        }
        self.index.insert(merged);
        merged
    }
}

/// The shadows of one transaction. Interior mutability lets a read (through `&`) merge shadows:
/// a `Tx` is neither `Sync` nor shared, and no borrow of the cell outlives a call.
#[derive(Debug, Default)]
pub(crate) struct WriteSet {
    inner: RefCell<Inner>,
}

// SAFETY: the shadows are plain memory owned by the set; moving the set to another thread moves
// that ownership with it. (`NonNull` is what keeps `Send` from being derived.)
unsafe impl Send for WriteSet {}

// SAFETY: the set lives in the pool's `TxCore`, behind its `RwLock`. Shared references to it
// reach several threads only through read guards, which exist only while no transaction is open:
// the set is then empty and nothing changes it, and readers never call into it. While a
// transaction is open, the write lock's holder reaches it through `Tx`, `PMut` and `SliceMut`,
// none of which is `Sync`, so every `&self` call (the only kind that changes the cell's contents
// through a shared reference) is made on that one thread.
unsafe impl Sync for WriteSet {}

impl WriteSet {
    /// Whether the transaction has written nothing through the set.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.inner.borrow().index.is_empty()
    }

    /// Number of live shadows.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.inner.borrow().index.len()
    }

    /// The address through which the transaction reads pool bytes `[offset, offset + len)`,
    /// aligned to `align` (a power of two dividing `offset`): a shadow's, or the pool's.
    ///
    /// # Safety
    /// `pool` is the pool's base address, the range lies inside the pool, and nothing writes the
    /// pool or the set while this runs.
    #[inline]
    pub(crate) unsafe fn read(
        &self,
        pool: *mut u8,
        offset: u64,
        len: u64,
        align: u64,
    ) -> *const u8 {
        let end = offset + len;
        {
            let inner = self.inner.borrow();
            if inner.index.is_empty() || len == 0 {
                return pool.wrapping_add(offset as usize);
            }
            if let Some(s) = inner.index.holding(offset, end, align) {
                return s.at(offset);
            }
            if !inner.index.overlaps(offset, end) {
                return pool.wrapping_add(offset as usize);
            }
        }
        // SAFETY: the caller's contract.
        let merged = unsafe { self.inner.borrow_mut().merge(pool, offset, end, align) };
        merged.at(offset)
    }

    /// The address through which the transaction writes `[offset, offset + len)`, aligned to
    /// `align`, in a shadow made now if no shadow holds it yet.
    ///
    /// # Safety
    /// As for [`read`](Self::read).
    #[inline]
    pub(crate) unsafe fn write(
        &mut self,
        pool: *mut u8,
        offset: u64,
        len: u64,
        align: u64,
    ) -> *mut u8 {
        let end = offset + len;
        let inner = self.inner.get_mut();
        if let Some(s) = inner.index.holding(offset, end, align) {
            return s.at(offset);
        }
        // SAFETY: the caller's contract.
        let shadow = unsafe { inner.merge(pool, offset, end, align) };
        shadow.at(offset)
    }

    /// Calls `f(target, bytes)` for every live shadow.
    pub(crate) fn for_each(&self, mut f: impl FnMut(u64, &[u8])) {
        let inner = self.inner.borrow();
        for s in inner.index.iter() {
            // SAFETY: a live shadow is `len` initialised bytes owned by the set, not written while
            // `&self` is held.
            let bytes = unsafe { std::slice::from_raw_parts(s.ptr.as_ptr(), s.len as usize) };
            f(s.start, bytes);
        }
    }

    /// Forgets every shadow (the transaction ended).
    pub(crate) fn clear(&mut self) {
        let inner = self.inner.get_mut();
        if inner.index.is_empty() {
            return;
        }
        inner.index.clear();
        inner.arena.clear();
    }
}

/// Equal bytes between two changed runs that still join them into one: a redo entry costs a
/// 24-byte header and starts on a cache line, so splitting for less saves nothing.
const JOIN_GAP: usize = 64;

/// Calls `f(start, len)` for each run of `new` that differs from `old` (the same length), in
/// order, runs less than [`JOIN_GAP`] equal bytes apart joined. A shadow holds whole ranges as
/// they were first written or read (a read that overlaps several merges them, with everything
/// between), so only these runs need logging and writing back. It compares a word at a time,
/// and extends a run by the last difference in the window past its end, so a densely changed
/// run costs a word per window: byte by byte, W5's generic map paid 800 instructions an insert.
pub(crate) fn changed_runs(new: &[u8], old: &[u8], mut f: impl FnMut(usize, usize)) {
    debug_assert_eq!(new.len(), old.len());
    let n = new.len().min(old.len());
    let (new, old) = (&new[..n], &old[..n]);
    let mut i = 0;
    while i < n {
        let Some((start, last)) = differing_at(new, old, i) else {
            i += 8;
            continue;
        };
        let mut end = last + 1;
        while let Some(last) = last_differing(new, old, end, (end + JOIN_GAP).min(n)) {
            end = last + 1;
        }
        f(start, end - start);
        // The `JOIN_GAP` bytes after the run are equal: nothing starts there.
        i = (end + JOIN_GAP).min(n);
    }
}

/// The last byte in `from .. to` that differs, scanning words from the end.
#[inline]
fn last_differing(new: &[u8], old: &[u8], from: usize, to: usize) -> Option<usize> {
    let whole_end = from + (to - from) / 8 * 8;
    let mut k = to;
    while k > whole_end {
        k -= 1;
        if new[k] != old[k] {
            return Some(k);
        }
    }
    while k > from {
        k -= 8;
        let x = word_at(new, k) ^ word_at(old, k);
        if x != 0 {
            return Some(k + 7 - (x.leading_zeros() / 8) as usize);
        }
    }
    None
}

/// The little-endian word at `at`, which the caller keeps in bounds.
#[inline]
fn word_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

/// The first and last bytes that differ among the (up to) 8 at `at`, if any.
#[inline]
fn differing_at(new: &[u8], old: &[u8], at: usize) -> Option<(usize, usize)> {
    if at + 8 <= new.len() {
        let x = word_at(new, at) ^ word_at(old, at);
        return (x != 0).then(|| {
            (
                at + (x.trailing_zeros() / 8) as usize,
                at + 7 - (x.leading_zeros() / 8) as usize,
            )
        });
    }
    let mut found = None;
    for k in at..new.len() {
        if new[k] != old[k] {
            found = Some((found.map_or(k, |(first, _)| first), k));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    #[test]
    fn changed_runs_cover_every_difference_and_nothing_far_from_one() {
        let old = vec![0u8; 1000];
        let mut new = old.clone();
        for &i in &[3usize, 5, 200, 230, 500, 999] {
            new[i] = 1;
        }
        let mut runs = Vec::new();
        changed_runs(&new, &old, |s, l| runs.push((s, l)));
        assert_eq!(runs, [(3, 3), (200, 31), (500, 1), (999, 1)]);
        runs.clear();
        changed_runs(&old, &old, |s, l| runs.push((s, l)));
        assert!(runs.is_empty());
    }

    /// The definition, a byte at a time.
    fn changed_runs_bytewise(new: &[u8], old: &[u8]) -> Vec<(usize, usize)> {
        let mut runs = Vec::new();
        let mut i = 0;
        while i < new.len() {
            if new[i] == old[i] {
                i += 1;
                continue;
            }
            let (start, mut end, mut j) = (i, i + 1, i + 1);
            while j < new.len() && j - end < JOIN_GAP {
                if new[j] != old[j] {
                    end = j + 1;
                }
                j += 1;
            }
            runs.push((start, end - start));
            i = j;
        }
        runs
    }

    #[test]
    fn changed_runs_match_the_bytewise_definition() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for case in 0..2000 {
            let len = (next() % 600) as usize;
            let old: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut new = old.clone();
            // Sparse, clustered or dense differences, some at the ends.
            let changes = [1, 4, 20, 200][case % 4].min(len);
            for _ in 0..changes {
                let at = match next() % 4 {
                    0 if len > 0 => len - 1 - (next() % 9) as usize % len,
                    _ if len > 0 => (next() % len as u64) as usize,
                    _ => break,
                };
                new[at] = new[at].wrapping_add(1 + (next() % 255) as u8);
            }
            let mut runs = Vec::new();
            changed_runs(&new, &old, |s, l| runs.push((s, l)));
            assert_eq!(
                runs,
                changed_runs_bytewise(&new, &old),
                "case {case}, len {len}"
            );
        }
    }

    use super::*;

    fn pool(len: usize) -> Vec<u8> {
        (0..len).map(|i| i as u8).collect()
    }

    fn read(set: &WriteSet, pool: &mut [u8], offset: u64, len: u64) -> Vec<u8> {
        // SAFETY: in bounds of `pool`, nothing else writes.
        let p = unsafe { set.read(pool.as_mut_ptr(), offset, len, 1) };
        // SAFETY: `read` returns `len` readable bytes.
        unsafe { std::slice::from_raw_parts(p, len as usize) }.to_vec()
    }

    fn write(set: &mut WriteSet, pool: &mut [u8], offset: u64, bytes: &[u8]) {
        // SAFETY: in bounds of `pool`, nothing else writes.
        let p = unsafe { set.write(pool.as_mut_ptr(), offset, bytes.len() as u64, 1) };
        // SAFETY: `write` returns `len` writable bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), p, bytes.len()) };
    }

    /// What the transaction should see: the pool with every write applied in order.
    fn model(pool: &[u8], writes: &[(u64, Vec<u8>)]) -> Vec<u8> {
        let mut m = pool.to_vec();
        for (o, b) in writes {
            m[*o as usize..*o as usize + b.len()].copy_from_slice(b);
        }
        m
    }

    #[test]
    fn reads_see_writes_and_the_pool_keeps_its_bytes() {
        let mut p = pool(4096);
        let before = p.clone();
        let mut set = WriteSet::default();
        let mut writes = Vec::new();
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        for round in 0..2000 {
            let off = next(4000);
            let len = 1 + next(90).min(4095 - off);
            if round % 3 == 0 {
                let got = read(&set, &mut p, off, len);
                let want = model(&before, &writes);
                assert_eq!(
                    got,
                    want[off as usize..(off + len) as usize],
                    "round {round}"
                );
            } else {
                let bytes: Vec<u8> = (0..len).map(|_| next(256) as u8).collect();
                write(&mut set, &mut p, off, &bytes);
                writes.push((off, bytes));
            }
        }
        assert_eq!(p, before, "the pool is untouched until commit");
        let mut applied = p.clone();
        let mut last_end = 0;
        let mut starts: Vec<(u64, usize)> = Vec::new();
        set.for_each(|t, b| {
            applied[t as usize..t as usize + b.len()].copy_from_slice(b);
            starts.push((t, b.len()));
        });
        starts.sort_unstable();
        for (t, l) in starts {
            assert!(t >= last_end, "live shadows are disjoint");
            last_end = t + l as u64;
        }
        assert_eq!(applied, model(&before, &writes));
        set.clear();
        assert!(set.is_empty());
        assert_eq!(read(&set, &mut p, 0, 16), before[..16]);
    }

    #[test]
    fn shadows_keep_the_alignment_of_their_pool_offset() {
        let mut p = vec![0u8; 1 << 16];
        let mut set = WriteSet::default();
        for (offset, align) in [
            (8u64, 8u64),
            (64, 64),
            (4096, 4096),
            (8200, 8),
            (12288, 4096),
        ] {
            // SAFETY: in bounds, nothing else writes.
            let w = unsafe { set.write(p.as_mut_ptr(), offset, 16, align) };
            assert_eq!(w as usize % align as usize, 0, "offset {offset}");
            // SAFETY: as above.
            let r = unsafe { set.read(p.as_mut_ptr(), offset, 8, align) };
            assert_eq!(r, w as *const u8);
        }
        // A stricter alignment than a shadow was made with moves the range to one that has it.
        // SAFETY: as above.
        let w = unsafe { set.write(p.as_mut_ptr(), 8192, 64, 8192) };
        assert_eq!(w as usize % 8192, 0);
    }

    #[test]
    fn many_shadows_switch_to_the_tree() {
        let mut p = pool(1 << 20);
        let mut set = WriteSet::default();
        for i in 0..1000u64 {
            write(&mut set, &mut p, i * 1000, &[i as u8; 8]);
        }
        assert_eq!(set.len(), 1000);
        // A read across three shadows merges them.
        let got = read(&set, &mut p, 1000, 2008);
        assert_eq!(&got[..8], &[1u8; 8]);
        assert_eq!(&got[2000..], &[3u8; 8]);
        assert_eq!(set.len(), 998);
    }
}

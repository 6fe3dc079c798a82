//! The persistent allocator's volatile side: which slots and chunks are free, rebuilt from the
//! pool's metadata at open in time proportional to the metadata (the chunk table and the run
//! bitmaps), never to the data.
//!
//! The allocator never writes the pool itself (a single-store free outside a transaction is
//! [`TxCore::free_now`](crate::tx::TxCore::free_now)'s, which tells it afterwards). Reserving an
//! object marks it used in memory and returns the metadata [`Op`]s that make the allocation
//! persistent; the transaction logs them and applies them after its commit fence. Freeing is
//! planned the same way and takes effect in memory only once the commit is durable, so an
//! aborted or crashed transaction never loses or double-uses a block.
//!
//! State is split into arenas, each behind its own mutex, chosen per thread; a run belongs to
//! the arena that created it, and so do its usage counters. The shared pool of free chunks has a
//! lock of its own, taken only when a run or large object is created or released.
//!
//! Every chunk handed out (to a run, a large object or a log) has its disk blocks reserved
//! first, so that a full file system is an error from the allocation rather than a `SIGBUS` on
//! the first store: see [`space`].

mod arena;
mod fast_hash;
mod free_chunks;
pub(crate) mod meta;
pub(crate) mod resolve;
pub(crate) mod space;

use std::cell::Cell;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use arena::{Arena, Run};
use free_chunks::FreeChunks;
pub(crate) use meta::{Extent, HeapMeta, ObjectRef};
use space::HeapSpace;

use crate::error::{Corruption, Error, MetaFailure, Result};
use crate::layout::heap::{chunk_kind, class_for, ChunkWord, CHUNK_SIZE, CLASSES, CLASS_COUNT};
use crate::layout::log::Op;
use crate::map::Space;

/// A block reserved by the open transaction; undone if it aborts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reservation {
    Slot {
        head: u32,
        slot: u32,
        class: u8,
        new_run: bool,
    },
    Span {
        first: u64,
        count: u64,
    },
    /// An empty run given back to make room; it returns to `arena` if the transaction aborts.
    ReleasedRun {
        head: u32,
        class: u8,
        fingerprint: u64,
        arena: u16,
    },
}

/// A block the open transaction frees at commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Free {
    pub object: ObjectRef,
    /// Whether the commit's data hash covers bytes of it: then its space may not be handed out
    /// again until a newer log is durable (see [`TxCore`](crate::tx::TxCore)'s `held`), and a
    /// run it leaves empty is kept.
    pub held: bool,
}

/// Heap usage, from [`Pool::stats`](crate::Pool::stats).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeapStats {
    /// Bytes of heap (all chunks).
    pub heap_bytes: u64,
    /// Bytes of chunks holding runs or large objects.
    pub bytes_in_use: u64,
    /// Sum of the usable sizes of live objects.
    pub allocated_bytes: u64,
    /// Live objects.
    pub live_objects: u64,
    /// Live objects larger than the largest size class (each takes whole chunks).
    pub large_objects: u64,
    /// Bytes of free chunks. With `bytes_in_use` and `log_bytes`, all of `heap_bytes`.
    pub free_bytes: u64,
    /// Bytes of chunks lent to transaction logs that outgrew their fixed slots.
    pub log_bytes: u64,
    /// Bytes of free chunks that object allocations leave free, so that a transaction on a full
    /// pool can still log the unlinking and freeing of objects.
    pub log_reserve_bytes: u64,
    /// Per size class with any runs: unit size, runs, live objects.
    pub classes: Vec<ClassStats>,
}

/// Use of one size class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassStats {
    /// Bytes per object.
    pub unit: u64,
    /// Runs of this class.
    pub runs: u64,
    /// Slots in each run: `runs * slots_per_run` objects fit without a new run.
    pub slots_per_run: u64,
    /// Live objects of this class.
    pub live_objects: u64,
}

/// Free chunks, and the large objects made of chunks.
#[derive(Default)]
struct Chunks {
    free: FreeChunks,
    large_live: u64,
    large_chunks: u64,
    /// Chunks lent to transaction logs.
    log_chunks: u64,
    /// Chunks of freed large objects not yet free to allocate (see [`Heap::hold_span`]).
    held_chunks: u64,
    /// Free chunks that objects may not take: kept for logs (see [`log_reserve`]).
    reserve: u64,
    /// The watermark: chunks `0 .. reserved` have their disk blocks reserved (see [`space`]).
    reserved: u64,
}

/// Most chunks held back for logs: 1 MiB.
const MAX_LOG_RESERVE: u64 = 64;
/// The share of a smaller heap held back for logs.
const LOG_RESERVE_SHARE: u64 = 16;

/// Free chunks that object allocations leave free, so that a transaction on a full pool can
/// still log what it needs to unlink and free objects ("free must succeed on a full pool"):
/// a sixteenth of the heap, at most [`MAX_LOG_RESERVE`] chunks (1 MiB, from a 16 MiB heap up).
///
/// Why this size: aborting needs no log space (the rollback reads the log in place; retiring
/// writes one entry in the fixed slot). Freeing needs commit record space: at most 16 bytes
/// per freed object (objects sharing a 64-slot bitmap word share one op) and 16 per chunk of a
/// run it empties. Unlinking needs redo entries: 64 bytes for each 8-byte write (an entry is its
/// 24-byte header and 8-byte target before the data, on its own cache lines). With the 64 KiB
/// fixed slot, 1 MiB lets one transaction on a full pool unlink (one 8-byte write each) and free
/// about 13,000 objects (80 bytes of log each at most); a sixteenth of a smaller heap lets it do proportionally less. A transaction
/// that logs more than that on a full pool fails with `OutOfSpace` (and rolls back).
///
/// The reserve is volatile: its chunks are free in the chunk table, and any free chunks serve
/// (logs take blocks as small as one chunk when no larger one is free), so the format is
/// unchanged. A pool filled by an earlier version may open with fewer free chunks than the
/// reserve: allocations then fail until frees bring it back.
fn log_reserve(chunk_count: u64) -> u64 {
    (chunk_count / LOG_RESERVE_SHARE).min(MAX_LOG_RESERVE)
}

/// The volatile allocator of one pool.
pub(crate) struct Heap {
    meta: HeapMeta,
    space: HeapSpace,
    chunks: Mutex<Chunks>,
    arenas: Box<[Mutex<Arena>]>,
    /// For each run's first chunk, the arena that owns the run.
    owner: Box<[AtomicU16]>,
    /// Per class: slots freed by single stores that their runs do not know yet.
    pending: [AtomicU64; CLASS_COUNT],
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Allocator state is updated in place step by step; no user code runs while one of these
    // locks is held, so a poisoned lock still guards consistent state.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    static ARENA_SEQ: Cell<usize> = const { Cell::new(usize::MAX) };
}
static NEXT_ARENA: AtomicUsize = AtomicUsize::new(0);

impl Heap {
    /// Rebuilds the volatile state from the pool's metadata. `space` reserves the disk blocks
    /// of the chunks it hands out; with `all_reserved` (the whole file is), it is never asked.
    ///
    /// First the chunk table, which the walk reads whole, and the chunks the table claims are in
    /// use (up to the last of them) are reserved again, so that a file that lost its reservations (a sparse copy) gets them back before
    /// the walk reads their bitmaps and the pool writes them: cheap where they are reserved
    /// already.
    ///
    /// # Errors
    /// [`MetaFailure::Corrupt`] if the metadata is inconsistent, [`MetaFailure::Space`] if the
    /// file system cannot reserve the chunks in use.
    pub(crate) fn open(
        meta: HeapMeta,
        space: Space,
        all_reserved: bool,
    ) -> Result<Heap, MetaFailure> {
        // Run heads are kept as `u32` chunk indices.
        if meta.geometry.chunk_count > u32::MAX as u64 {
            return Err(MetaFailure::Corrupt(Corruption::TooManyChunks {
                chunks: meta.geometry.chunk_count,
            }));
        }
        let arena_count = std::thread::available_parallelism()
            .map_or(4, |n| n.get())
            .clamp(1, 16);
        let heap = Heap {
            meta,
            space: HeapSpace::new(space, meta.geometry),
            chunks: Mutex::new(Chunks {
                reserve: log_reserve(meta.geometry.chunk_count),
                reserved: if all_reserved {
                    meta.geometry.chunk_count
                } else {
                    0
                },
                ..Chunks::default()
            }),
            arenas: (0..arena_count)
                .map(|_| Mutex::new(Arena::default()))
                .collect(),
            owner: (0..meta.geometry.chunk_count)
                .map(|_| AtomicU16::new(0))
                .collect(),
            pending: std::array::from_fn(|_| AtomicU64::new(0)),
        };
        let mut chunks = lock(&heap.chunks);
        if !all_reserved {
            heap.space.reserve_table().map_err(MetaFailure::Space)?;
        }
        heap.space
            .cover_exactly(&mut chunks.reserved, meta.claimed_end())
            .map_err(MetaFailure::Space)?;
        let mut runs = Vec::new();
        meta.walk(|extent| match extent {
            Extent::Free { first, count } => chunks.free.give(first, count),
            Extent::Span { count, .. } => {
                chunks.large_live += 1;
                chunks.large_chunks += count;
            }
            Extent::Run {
                first,
                class,
                fingerprint,
            } => runs.push((first, class, fingerprint)),
        })
        .map_err(MetaFailure::Corrupt)?;
        // Each arena's run table is sized once: grown run by run, it would be reallocated a
        // dozen times, into freshly faulted memory, on every open.
        let mut arenas: Vec<_> = heap.arenas.iter().map(lock).collect();
        for arena in &mut arenas {
            arena.reserve_runs(runs.len().div_ceil(arena_count));
        }
        for (next, &(first, class, fingerprint)) in runs.iter().enumerate() {
            let words = (CLASSES[class as usize].slots as u64).div_ceil(64);
            let bitmap = (0..words).map(|w| meta.bitmap_word(first, w)).collect();
            let arena = next % arena_count;
            heap.owner[first as usize].store(arena as u16, Ordering::Relaxed);
            arenas[arena].add_run(first as u32, Run::new(class, fingerprint, bitmap));
        }
        drop(arenas);
        drop(chunks);
        Ok(heap)
    }

    pub(crate) fn meta(&self) -> &HeapMeta {
        &self.meta
    }

    /// Chunks with their disk blocks reserved: the watermark.
    #[cfg(test)]
    pub(crate) fn reserved_chunks(&self) -> u64 {
        lock(&self.chunks).reserved
    }

    /// The calling thread's arena.
    fn my_arena(&self) -> usize {
        ARENA_SEQ.with(|seq| {
            if seq.get() == usize::MAX {
                seq.set(NEXT_ARENA.fetch_add(1, Ordering::Relaxed));
            }
            seq.get() % self.arenas.len()
        })
    }

    /// The arena owning the run at `head`.
    fn arena_of(&self, head: u64) -> MutexGuard<'_, Arena> {
        lock(&self.arenas[self.owner[head as usize].load(Ordering::Relaxed) as usize])
    }

    /// Takes `count` contiguous free chunks for an object request of `requested` bytes, leaving
    /// the log reserve free.
    fn take_chunks(&self, count: u64, requested: u64) -> Result<u64> {
        let mut chunks = lock(&self.chunks);
        let allowed = chunks.free.total().saturating_sub(chunks.reserve);
        let taken = if count <= allowed {
            chunks.free.take(count)
        } else {
            None
        };
        let first = taken.ok_or_else(|| Error::OutOfSpace {
            requested,
            available: chunks.free.largest().min(allowed) * CHUNK_SIZE,
        })?;
        self.cover(&mut chunks, first, count)?;
        Ok(first)
    }

    /// Makes sure chunks `first .. first + count`, just taken, have their disk blocks reserved
    /// before anyone writes them; if they cannot be, gives them back.
    #[inline]
    fn cover(&self, chunks: &mut Chunks, first: u64, count: u64) -> Result<()> {
        let result = self.space.cover(&mut chunks.reserved, first + count);
        if result.is_err() {
            chunks.free.give(first, count);
        }
        result
    }

    /// Reserves a block for an object of `size` bytes, alignment `align` and type `fingerprint`,
    /// appending to `ops` what makes it persistent and to `reservations` what undoes it (its own
    /// reservation last). Returns its offset.
    pub(crate) fn reserve(
        &self,
        size: u64,
        align: u64,
        fingerprint: u64,
        ops: &mut Vec<Op>,
        reservations: &mut Vec<Reservation>,
    ) -> Result<u64> {
        match class_for(size, align) {
            Some(class) => self.reserve_slot(class, fingerprint, size, ops, reservations),
            None => self.reserve_span(size, fingerprint, ops, reservations),
        }
    }

    fn reserve_slot(
        &self,
        class: u8,
        fingerprint: u64,
        size: u64,
        ops: &mut Vec<Op>,
        reservations: &mut Vec<Reservation>,
    ) -> Result<u64> {
        let c = &CLASSES[class as usize];
        let index = self.my_arena();
        let mut new_run = false;
        let taken = lock(&self.arenas[index]).take(class, fingerprint);
        let taken = match taken {
            Some(taken) => taken,
            None => {
                if self.steal(index, class, fingerprint).is_none() {
                    let first = self
                        .take_chunks_reclaiming(c.run_chunks as u64, size, ops, reservations)
                        .map_err(small_object_space)?;
                    self.run_creation_ops(first, class, fingerprint, ops);
                    let words = vec![0u64; (c.slots as usize).div_ceil(64)].into_boxed_slice();
                    self.adopt(index, first as u32, Run::new(class, fingerprint, words));
                    new_run = true;
                }
                lock(&self.arenas[index])
                    .take(class, fingerprint)
                    .expect("an adopted run has room")
            }
        };
        let (head, slot) = (taken.head as u64, taken.slot as u64);
        ops.push(Op::SetBits {
            target: self.meta.bitmap_word_offset(head, slot / 64),
            mask: 1 << (slot % 64),
        });
        reservations.push(Reservation::Slot {
            head: taken.head,
            slot: taken.slot,
            class,
            new_run,
        });
        Ok(self.meta.slot_offset(head, c, slot))
    }

    /// Moves a run with room for this class and type from another arena into arena `index`: runs
    /// found at open are spread over the arenas, and a thread that exits leaves its runs behind.
    /// Arenas that are busy are skipped rather than waited for.
    fn steal(&self, index: usize, class: u8, fingerprint: u64) -> Option<u32> {
        for (i, other) in self.arenas.iter().enumerate() {
            if i == index {
                continue;
            }
            let mut other = match other.try_lock() {
                Ok(guard) => guard,
                Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => continue,
            };
            if let Some((head, run)) = other.steal(class, fingerprint) {
                drop(other);
                self.adopt(index, head, run);
                return Some(head);
            }
        }
        None
    }

    /// Makes `run` belong to arena `index`.
    fn adopt(&self, index: usize, head: u32, run: Run) {
        self.owner[head as usize].store(index as u16, Ordering::Relaxed);
        lock(&self.arenas[index]).add_run(head, run);
    }

    /// Takes `count` contiguous free chunks; if there are none, gives back every empty run (in
    /// this transaction: their release ops go to `ops`, and `reservations` records how to take
    /// them back on abort) and tries again.
    fn take_chunks_reclaiming(
        &self,
        count: u64,
        requested: u64,
        ops: &mut Vec<Op>,
        reservations: &mut Vec<Reservation>,
    ) -> Result<u64> {
        if let Ok(first) = self.take_chunks(count, requested) {
            return Ok(first);
        }
        for (index, arena) in self.arenas.iter().enumerate() {
            let empty = lock(arena).drain_empty();
            for (head, class, fingerprint) in empty {
                self.run_release_ops(head as u64, class, ops);
                self.give_run_chunks(head as u64, class);
                reservations.push(Reservation::ReleasedRun {
                    head,
                    class,
                    fingerprint,
                    arena: index as u16,
                });
            }
        }
        self.take_chunks(count, requested)
    }

    fn run_creation_ops(&self, first: u64, class: u8, fingerprint: u64, ops: &mut Vec<Op>) {
        let c = &CLASSES[class as usize];
        let g = &self.meta.geometry;
        ops.push(Op::Zero {
            target: self.meta.bitmap_offset(first),
            len: c.bitmap_bytes(),
        });
        let head = ChunkWord {
            kind: chunk_kind::RUN,
            class,
            count: c.run_chunks,
        };
        ops.push(Op::Write {
            target: g.chunk_entry_offset(first),
            value: head.encode(),
        });
        ops.push(Op::Write {
            target: g.chunk_entry_offset(first) + 8,
            value: fingerprint,
        });
        for i in 1..c.run_chunks as u64 {
            let cont = ChunkWord {
                kind: chunk_kind::CONT,
                class: 0,
                count: i as u32,
            };
            ops.push(Op::Write {
                target: g.chunk_entry_offset(first + i),
                value: cont.encode(),
            });
        }
    }

    fn run_release_ops(&self, first: u64, class: u8, ops: &mut Vec<Op>) {
        let g = &self.meta.geometry;
        for i in 0..CLASSES[class as usize].run_chunks as u64 {
            ops.push(Op::Write {
                target: g.chunk_entry_offset(first + i),
                value: 0,
            });
        }
    }

    fn reserve_span(
        &self,
        size: u64,
        fingerprint: u64,
        ops: &mut Vec<Op>,
        reservations: &mut Vec<Reservation>,
    ) -> Result<u64> {
        let count = size.max(1).div_ceil(CHUNK_SIZE);
        if count > u32::MAX as u64 {
            let available = lock(&self.chunks).free.largest() * CHUNK_SIZE;
            return Err(Error::OutOfSpace {
                requested: size,
                available,
            });
        }
        let first = self.take_chunks_reclaiming(count, size, ops, reservations)?;
        {
            let mut chunks = lock(&self.chunks);
            chunks.large_live += 1;
            chunks.large_chunks += count;
        }
        let g = &self.meta.geometry;
        let word = ChunkWord {
            kind: chunk_kind::SPAN,
            class: 0,
            count: count as u32,
        };
        ops.push(Op::Write {
            target: g.chunk_entry_offset(first),
            value: word.encode(),
        });
        ops.push(Op::Write {
            target: g.chunk_entry_offset(first) + 8,
            value: fingerprint,
        });
        reservations.push(Reservation::Span { first, count });
        Ok(g.chunk_offset(first))
    }

    /// Undoes a reservation of a transaction that aborted. Reservations must be undone in
    /// reverse order.
    pub(crate) fn unreserve(&self, reservation: Reservation) {
        match reservation {
            Reservation::Span { first, count } => self.give_span(first, count),
            Reservation::ReleasedRun {
                head,
                class,
                fingerprint,
                arena,
            } => {
                let c = &CLASSES[class as usize];
                lock(&self.chunks)
                    .free
                    .take_exact(head as u64, c.run_chunks as u64);
                let words = vec![0u64; (c.slots as usize).div_ceil(64)].into_boxed_slice();
                self.adopt(arena as usize, head, Run::new(class, fingerprint, words));
            }
            Reservation::Slot {
                head,
                slot,
                new_run,
                ..
            } => {
                let mut arena = self.arena_of(head as u64);
                arena.release_slots(head, std::iter::once(slot as u64));
                if new_run {
                    // The run was made for this transaction: nothing else can be in it.
                    let class = arena.remove_run(head);
                    self.give_run_chunks(head as u64, class);
                }
            }
        }
    }

    /// Appends the ops that free `frees` (distinct live objects) and release the runs they leave
    /// empty, sorting `frees` so each run's are together. Changes nothing in memory:
    /// [`apply_frees`](Self::apply_frees) does that once the commit is durable.
    pub(crate) fn plan_frees(&self, frees: &mut [Free], ops: &mut Vec<Op>) {
        frees.sort_unstable_by_key(|f| match f.object {
            ObjectRef::Slot { first, slot, .. } => (0, first, slot),
            ObjectRef::Span { first, .. } => (1, first, 0),
        });
        for_each_run_group(frees, |head, group| {
            let arena = self.arena_of(head);
            // One op per bitmap word: the group is sorted by slot.
            let mut emit = |(word, mask): (u64, u64)| {
                ops.push(Op::ClearBits {
                    target: self.meta.bitmap_word_offset(head, word),
                    mask,
                })
            };
            let mut pending: Option<(u64, u64)> = None;
            for slot in group.iter().map(slot_of) {
                let (w, mask) = (slot / 64, 1u64 << (slot % 64));
                match &mut pending {
                    Some((word, m)) if *word == w => *m |= mask,
                    _ => pending.replace((w, mask)).into_iter().for_each(&mut emit),
                }
            }
            pending.into_iter().for_each(emit);
            if group.iter().any(|f| f.held) {
                return;
            }
            if let Some(class) = arena.releases(head as u32, group.len() as u32) {
                self.run_release_ops(head, class, ops);
            }
        });
        for f in frees.iter() {
            if let ObjectRef::Span { first, .. } = f.object {
                ops.push(Op::Write {
                    target: self.meta.geometry.chunk_entry_offset(first),
                    value: 0,
                });
            }
        }
    }

    /// Makes committed frees take effect in memory; must follow [`plan_frees`](Self::plan_frees)
    /// with the same (sorted) list and no heap change between. A held slot is counted free but
    /// stays taken, and `held_slot(head, slot)` is called for it; a held span's chunks are
    /// kept by [`hold_span`](Self::hold_span).
    pub(crate) fn apply_frees(&self, frees: &[Free], mut held_slot: impl FnMut(u32, u64)) {
        for_each_run_group(frees, |head, group| {
            let mut arena = self.arena_of(head);
            let any_held = group.iter().any(|f| f.held);
            let release = !any_held && arena.releases(head as u32, group.len() as u32).is_some();
            let class =
                arena.release_slots(head as u32, group.iter().filter(|f| !f.held).map(slot_of));
            if release {
                let class = arena.remove_run(head as u32);
                self.give_run_chunks(head, class);
            }
            drop(arena);
            for f in group.iter().filter(|f| f.held) {
                self.note_direct_free(class);
                held_slot(head as u32, slot_of(f));
            }
        });
        for f in frees {
            if let ObjectRef::Span { first, count, .. } = f.object {
                if f.held {
                    self.hold_span(first, count);
                } else {
                    self.give_span(first, count);
                }
            }
        }
    }

    /// A large object freed durably whose chunks may not be handed out yet: it no longer counts
    /// as live, and its chunks count as free, but only [`release_span`](Self::release_span)
    /// makes them available.
    fn hold_span(&self, first: u64, count: u64) {
        let _ = first;
        let mut chunks = lock(&self.chunks);
        chunks.large_live -= 1;
        chunks.large_chunks -= count;
        chunks.held_chunks += count;
    }

    /// Makes the chunks of a span from [`hold_span`](Self::hold_span) available.
    pub(crate) fn release_span(&self, first: u64, count: u64) {
        let mut chunks = lock(&self.chunks);
        chunks.held_chunks -= count;
        chunks.free.give(first, count);
    }

    /// Whether freeing `slot` would leave the run at `first` with no object, judged from the
    /// persistent bitmap (outside a transaction it is the whole truth). Such a free goes through
    /// a logged transaction, which may release the run.
    #[inline]
    pub(crate) fn run_would_empty(&self, first: u64, class: u8, slot: u64) -> bool {
        let words = (CLASSES[class as usize].slots as u64).div_ceil(64);
        // The freed slot's own word first: in a busy run it has other objects, ending the scan.
        let own = self.meta.bitmap_word(first, slot / 64) & !(1 << (slot % 64));
        own == 0
            && (0..words)
                .filter(|&w| w != slot / 64)
                .all(|w| self.meta.bitmap_word(first, w) == 0)
    }

    /// Counts a slot freed by a single store ([`TxCore::free_now`](crate::tx::TxCore)) whose
    /// run has not been told yet: statistics subtract it until
    /// [`apply_direct_frees`](Self::apply_direct_frees) does. Only the pool's writer calls this,
    /// so a plain load and store suffice: no locked instruction, which would wait for the free's
    /// write-back.
    pub(crate) fn note_direct_free(&self, class: u8) {
        let c = &self.pending[class as usize];
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Tells the runs about slots freed by single stores: `(run head, slot)`, drained.
    pub(crate) fn apply_direct_frees(&self, freed: &mut Vec<(u32, u64)>) {
        freed.sort_unstable();
        let mut rest = &freed[..];
        while let Some(&(head, _)) = rest.first() {
            let end = rest
                .iter()
                .position(|&(h, _)| h != head)
                .unwrap_or(rest.len());
            let class = self
                .arena_of(head as u64)
                .release_slots(head, rest[..end].iter().map(|&(_, slot)| slot));
            let c = &self.pending[class as usize];
            c.store(c.load(Ordering::Relaxed) - end as u64, Ordering::Relaxed);
            rest = &rest[end..];
        }
        freed.clear();
    }

    /// Returns the chunks of a large object that is no longer live (freed durably, or reserved
    /// by a transaction that aborted).
    pub(crate) fn give_span(&self, first: u64, count: u64) {
        let mut chunks = lock(&self.chunks);
        chunks.free.give(first, count);
        chunks.large_live -= 1;
        chunks.large_chunks -= count;
    }

    /// Returns the chunks of a run that no longer exists.
    fn give_run_chunks(&self, head: u64, class: u8) {
        lock(&self.chunks)
            .free
            .give(head, CLASSES[class as usize].run_chunks as u64);
    }

    /// Lends chunks to a log: `bytes` if that many are free together, else the largest free
    /// block (at least one chunk), the log reserve included. Never made persistent: the log
    /// refers to them only while it may need replaying. Returns `(offset, len)`.
    pub(crate) fn reserve_log_space(&self, bytes: u64) -> Result<(u64, u64)> {
        let mut chunks = lock(&self.chunks);
        let count = bytes.div_ceil(CHUNK_SIZE).min(chunks.free.largest()).max(1);
        let first = chunks.free.take(count).ok_or(Error::OutOfSpace {
            requested: bytes,
            available: 0,
        })?;
        self.cover(&mut chunks, first, count)?;
        chunks.log_chunks += count;
        Ok((self.meta.geometry.chunk_offset(first), count * CHUNK_SIZE))
    }

    /// Returns log space from [`reserve_log_space`](Self::reserve_log_space).
    pub(crate) fn release_log_space(&self, offset: u64, len: u64) {
        let first = (offset - self.meta.geometry.heap_offset) / CHUNK_SIZE;
        let mut chunks = lock(&self.chunks);
        chunks.free.give(first, len / CHUNK_SIZE);
        chunks.log_chunks -= len / CHUNK_SIZE;
    }

    /// Current usage.
    pub(crate) fn stats(&self) -> HeapStats {
        let (large_live, large_chunks, free_chunks, log_chunks, reserve) = {
            let chunks = lock(&self.chunks);
            (
                chunks.large_live,
                chunks.large_chunks,
                chunks.free.total() + chunks.held_chunks,
                chunks.log_chunks,
                chunks.reserve,
            )
        };
        let mut live = [0u64; crate::layout::heap::CLASS_COUNT];
        let mut runs = [0u64; crate::layout::heap::CLASS_COUNT];
        for arena in self.arenas.iter() {
            let arena = lock(arena);
            for i in 0..live.len() {
                live[i] += arena.live[i];
                runs[i] += arena.runs_per_class[i];
            }
        }
        // Saturating: a reader racing the writer's batch may see a run told before its counter.
        for (live, pending) in live.iter_mut().zip(&self.pending) {
            *live = live.saturating_sub(pending.load(Ordering::Relaxed));
        }
        let mut stats = HeapStats {
            heap_bytes: self.meta.geometry.chunk_count * CHUNK_SIZE,
            bytes_in_use: large_chunks * CHUNK_SIZE,
            allocated_bytes: large_chunks * CHUNK_SIZE,
            live_objects: large_live,
            large_objects: large_live,
            free_bytes: free_chunks * CHUNK_SIZE,
            log_bytes: log_chunks * CHUNK_SIZE,
            log_reserve_bytes: reserve * CHUNK_SIZE,
            classes: Vec::new(),
        };
        for (i, class) in CLASSES.iter().enumerate() {
            if runs[i] == 0 && live[i] == 0 {
                continue;
            }
            stats.bytes_in_use += runs[i] * class.run_chunks as u64 * CHUNK_SIZE;
            stats.allocated_bytes += live[i] * class.unit as u64;
            stats.live_objects += live[i];
            stats.classes.push(ClassStats {
                unit: class.unit as u64,
                runs: runs[i],
                slots_per_run: class.slots as u64,
                live_objects: live[i],
            });
        }
        stats
    }
}

/// A failure to make a run for a small object: the free block it reports may be larger than
/// the object, yet smaller than the run its class needs; report the largest object whose class's
/// run would fit it instead, so that `available` does not claim room the object could have had.
#[cold]
fn small_object_space(e: Error) -> Error {
    match e {
        Error::OutOfSpace {
            requested,
            available,
        } => Error::OutOfSpace {
            requested,
            available: CLASSES
                .iter()
                .filter(|c| c.run_chunks as u64 * CHUNK_SIZE <= available)
                .map(|c| c.unit as u64)
                .max()
                .unwrap_or(0)
                .min(available),
        },
        e => e,
    }
}

/// Calls `f(run head, the frees in it)` for each run with frees in `frees`, which must be
/// sorted as [`Heap::plan_frees`] sorts them.
fn for_each_run_group(frees: &[Free], mut f: impl FnMut(u64, &[Free])) {
    let mut rest = frees;
    while let Some(Free {
        object: ObjectRef::Slot { first, .. },
        ..
    }) = rest.first()
    {
        let head = *first;
        let end = rest
            .iter()
            .position(|g| !matches!(g.object, ObjectRef::Slot { first, .. } if first == head))
            .unwrap_or(rest.len());
        let (group, tail) = rest.split_at(end);
        f(head, group);
        rest = tail;
    }
}

fn slot_of(free: &Free) -> u64 {
    match free.object {
        ObjectRef::Slot { slot, .. } => slot,
        ObjectRef::Span { .. } => unreachable!("run groups hold slots only"),
    }
}

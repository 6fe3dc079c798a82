//! The persistent allocator's volatile side: which slots and chunks are free, rebuilt from the
//! pool's metadata at open in time proportional to the metadata (the chunk table and the run
//! bitmaps), never to the data.
//!
//! The allocator never writes the pool itself. Reserving an object marks it used in memory and
//! returns the metadata [`Op`]s that make the allocation persistent; the transaction logs them
//! and applies them after its commit fence. Freeing is planned the same way and takes effect in
//! memory only once the commit is durable, so an aborted or crashed transaction never loses or
//! double-uses a block.
//!
//! State is split into arenas, each behind its own mutex, chosen per thread; a run belongs to
//! the arena that created it. The shared index of free chunks has a lock of its own, taken only
//! when a run or large object is created or released.

mod fast_hash;
mod free_chunks;
pub(crate) mod meta;

use std::cell::Cell;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use fast_hash::FastMap;
use free_chunks::FreeChunks;
pub(crate) use meta::{Extent, HeapMeta, MetaError, ObjectRef};

use crate::error::{Error, Result};
use crate::layout::heap::{chunk_kind, class_for, ChunkWord, CHUNK_SIZE, CLASSES, CLASS_COUNT};
use crate::layout::log::Op;

/// One run's volatile state.
struct Run {
    class: u8,
    fingerprint: u64,
    /// Free slots (in memory: reserved slots count as used).
    free: u32,
    /// Persistent bitmap OR slots reserved by the open transaction.
    bitmap: Box<[u64]>,
    /// Word to start the next search at.
    hint: u32,
    /// Whether the run is its bin's `current` or in its `partial` list.
    listed: bool,
}

#[derive(Default)]
struct Bin {
    current: Option<u32>,
    partial: Vec<u32>,
}

#[derive(Default)]
struct Arena {
    runs: FastMap<u32, Run>,
    bins: FastMap<(u8, u64), Bin>,
}

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
}

/// A block the open transaction frees at commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Free {
    pub object: ObjectRef,
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
    /// Live objects of this class.
    pub live_objects: u64,
}

struct Counters {
    class_live: [AtomicU64; CLASS_COUNT],
    class_runs: [AtomicU64; CLASS_COUNT],
    large_live: AtomicU64,
    large_chunks: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            class_live: std::array::from_fn(|_| AtomicU64::new(0)),
            class_runs: std::array::from_fn(|_| AtomicU64::new(0)),
            large_live: AtomicU64::new(0),
            large_chunks: AtomicU64::new(0),
        }
    }
}

fn add(c: &AtomicU64, delta: i64) {
    c.fetch_add(delta as u64, Ordering::Relaxed);
}

/// The volatile allocator of one pool.
pub(crate) struct Heap {
    meta: HeapMeta,
    chunks: Mutex<FreeChunks>,
    arenas: Box<[Mutex<Arena>]>,
    /// For each run's first chunk, the arena that owns the run.
    owner: Box<[AtomicU16]>,
    counters: Counters,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Allocator state is updated in place step by step; a panic in user code never runs while
    // one of these locks is held, so a poisoned lock still guards consistent state.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

thread_local! {
    static ARENA_SEQ: Cell<usize> = const { Cell::new(usize::MAX) };
}
static NEXT_ARENA: AtomicU64 = AtomicU64::new(0);

impl Heap {
    /// Rebuilds the volatile state from the pool's metadata.
    pub(crate) fn open(meta: HeapMeta) -> Result<Heap, MetaError> {
        let arena_count = std::thread::available_parallelism()
            .map_or(4, |n| n.get())
            .clamp(1, 16);
        let n = meta.geometry.chunk_count;
        let heap = Heap {
            meta,
            chunks: Mutex::new(FreeChunks::default()),
            arenas: (0..arena_count)
                .map(|_| Mutex::new(Arena::default()))
                .collect(),
            owner: (0..n).map(|_| AtomicU16::new(0)).collect(),
            counters: Counters::default(),
        };
        let mut next = 0usize;
        let mut chunks = lock(&heap.chunks);
        let mut arenas: Vec<_> = heap.arenas.iter().map(lock).collect();
        meta.walk(|extent| match extent {
            Extent::Free { first, count } => chunks.give(first, count),
            Extent::Span { count, .. } => {
                add(&heap.counters.large_live, 1);
                add(&heap.counters.large_chunks, count as i64);
            }
            Extent::Run {
                first,
                class,
                fingerprint,
            } => {
                let c = &CLASSES[class as usize];
                let words = (c.slots as u64).div_ceil(64);
                let mut bitmap: Box<[u64]> =
                    (0..words).map(|w| meta.bitmap_word(first, w)).collect();
                if c.slots % 64 != 0 {
                    // Bits past the last slot are never slots: keep them set so no search finds them.
                    bitmap[words as usize - 1] |= !((1u64 << (c.slots % 64)) - 1);
                }
                let used: u32 = bitmap.iter().map(|w| w.count_ones()).sum::<u32>()
                    - (words as u32 * 64 - c.slots);
                add(&heap.counters.class_live[class as usize], used as i64);
                add(&heap.counters.class_runs[class as usize], 1);
                let arena = next % arena_count;
                next += 1;
                heap.owner[first as usize].store(arena as u16, Ordering::Relaxed);
                let free = c.slots - used;
                let a = &mut arenas[arena];
                if free > 0 {
                    a.bins
                        .entry((class, fingerprint))
                        .or_default()
                        .partial
                        .push(first as u32);
                }
                a.runs.insert(
                    first as u32,
                    Run {
                        class,
                        fingerprint,
                        free,
                        bitmap,
                        hint: 0,
                        listed: free > 0,
                    },
                );
            }
        })?;
        drop(arenas);
        drop(chunks);
        Ok(heap)
    }

    fn arena_index(&self) -> usize {
        ARENA_SEQ.with(|seq| {
            if seq.get() == usize::MAX {
                seq.set(NEXT_ARENA.fetch_add(1, Ordering::Relaxed) as usize);
            }
            seq.get() % self.arenas.len()
        })
    }

    /// Takes `count` contiguous free chunks for a request of `requested` bytes.
    fn take_chunks(&self, count: u64, requested: u64) -> Result<u64> {
        let mut chunks = lock(&self.chunks);
        chunks.take(count).ok_or(Error::OutOfSpace {
            requested,
            available: chunks.largest() * CHUNK_SIZE,
        })
    }

    /// Reserves a block for an object of `size` bytes, alignment `align` and type `fingerprint`,
    /// appending to `ops` what makes it persistent. Returns its offset.
    pub(crate) fn reserve(
        &self,
        size: u64,
        align: u64,
        fingerprint: u64,
        ops: &mut Vec<Op>,
    ) -> Result<(u64, Reservation)> {
        match class_for(size, align) {
            Some(class) => self.reserve_slot(class, fingerprint, size, ops),
            None => self.reserve_span(size, fingerprint, ops),
        }
    }

    fn reserve_slot(
        &self,
        class: u8,
        fingerprint: u64,
        size: u64,
        ops: &mut Vec<Op>,
    ) -> Result<(u64, Reservation)> {
        let c = &CLASSES[class as usize];
        let arena_index = self.arena_index();
        let mut arena = lock(&self.arenas[arena_index]);
        let arena = &mut *arena;
        let bin = arena.bins.entry((class, fingerprint)).or_default();
        let mut new_run = false;
        let head = loop {
            if let Some(h) = bin.current {
                if arena.runs[&h].free > 0 {
                    break h;
                }
                arena.runs.get_mut(&h).expect("current run exists").listed = false;
                bin.current = None;
            }
            if let Some(h) = bin.partial.pop() {
                bin.current = Some(h);
                continue;
            }
            let first = self.take_chunks(c.run_chunks as u64, size)?;
            self.run_creation_ops(first, class, fingerprint, ops);
            self.owner[first as usize].store(arena_index as u16, Ordering::Relaxed);
            let words = (c.slots as u64).div_ceil(64) as usize;
            let mut bitmap = vec![0u64; words].into_boxed_slice();
            if c.slots % 64 != 0 {
                bitmap[words - 1] = !((1u64 << (c.slots % 64)) - 1);
            }
            arena.runs.insert(
                first as u32,
                Run {
                    class,
                    fingerprint,
                    free: c.slots,
                    bitmap,
                    hint: 0,
                    listed: true,
                },
            );
            add(&self.counters.class_runs[class as usize], 1);
            bin.current = Some(first as u32);
            new_run = true;
        };
        let run = arena.runs.get_mut(&head).expect("chosen run exists");
        let words = run.bitmap.len() as u32;
        let mut w = run.hint;
        while run.bitmap[w as usize] == u64::MAX {
            w = (w + 1) % words;
        }
        run.hint = w;
        let bit = (!run.bitmap[w as usize]).trailing_zeros();
        run.bitmap[w as usize] |= 1 << bit;
        run.free -= 1;
        let slot = w * 64 + bit;
        let bitmap = self.meta.bitmap_offset(head as u64);
        ops.push(Op::SetBits {
            target: bitmap + w as u64 * 8,
            mask: 1 << bit,
        });
        let offset = self.meta.slot_offset(head as u64, c, slot as u64);
        Ok((
            offset,
            Reservation::Slot {
                head,
                slot,
                class,
                new_run,
            },
        ))
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

    fn reserve_span(
        &self,
        size: u64,
        fingerprint: u64,
        ops: &mut Vec<Op>,
    ) -> Result<(u64, Reservation)> {
        let count = size.max(1).div_ceil(CHUNK_SIZE);
        let first = self.take_chunks(count, size)?;
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
        Ok((g.chunk_offset(first), Reservation::Span { first, count }))
    }

    /// Undoes a reservation of a transaction that aborted. Reservations must be undone in
    /// reverse order.
    pub(crate) fn unreserve(&self, reservation: Reservation) {
        match reservation {
            Reservation::Span { first, count } => lock(&self.chunks).give(first, count),
            Reservation::Slot {
                head,
                slot,
                new_run,
                ..
            } => {
                let mut arena =
                    lock(&self.arenas[self.owner[head as usize].load(Ordering::Relaxed) as usize]);
                let arena = &mut *arena;
                let run = arena.runs.get_mut(&head).expect("reserved run exists");
                run.bitmap[slot as usize / 64] &= !(1 << (slot % 64));
                run.free += 1;
                let key = (run.class, run.fingerprint);
                if new_run {
                    // The run was created for this transaction; nothing else can be in it.
                    let run = arena.runs.remove(&head).expect("run exists");
                    add(&self.counters.class_runs[run.class as usize], -1);
                    let bin = arena.bins.get_mut(&key).expect("bin exists");
                    unlist(bin, head);
                    lock(&self.chunks)
                        .give(head as u64, CLASSES[run.class as usize].run_chunks as u64);
                } else if !run.listed {
                    run.listed = true;
                    arena
                        .bins
                        .get_mut(&key)
                        .expect("bin exists")
                        .partial
                        .push(head);
                }
            }
        }
    }

    /// Records that reservations of a committed transaction are now live objects.
    pub(crate) fn commit_reservations(&self, reservations: &[Reservation]) {
        for r in reservations {
            match *r {
                Reservation::Span { count, .. } => {
                    add(&self.counters.large_live, 1);
                    add(&self.counters.large_chunks, count as i64);
                }
                Reservation::Slot { class, .. } => {
                    add(&self.counters.class_live[class as usize], 1)
                }
            }
        }
    }

    /// Whether freeing `object` alone would leave its run empty and release it (which takes
    /// more than one metadata word).
    pub(crate) fn free_releases_run(&self, object: &ObjectRef) -> bool {
        match *object {
            ObjectRef::Span { .. } => false,
            ObjectRef::Slot { first, .. } => {
                let arena =
                    lock(&self.arenas[self.owner[first as usize].load(Ordering::Relaxed) as usize]);
                arena
                    .runs
                    .get(&(first as u32))
                    .is_some_and(|run| self.releases_run(&arena, first as u32, run, 1))
            }
        }
    }

    /// Appends the ops that free `frees` (distinct live objects) and release runs they leave
    /// empty. Changes nothing in memory: [`apply_frees`](Self::apply_frees) does that once the
    /// commit is durable.
    pub(crate) fn plan_frees(&self, frees: &mut [Free], ops: &mut Vec<Op>) {
        frees.sort_unstable_by_key(|f| match f.object {
            ObjectRef::Slot { first, slot, .. } => (0, first, slot),
            ObjectRef::Span { first, .. } => (1, first, 0),
        });
        self.for_each_run_group(frees, |heap, head, group, arena| {
            let run = &arena.runs[&head];
            let bitmap = heap.meta.bitmap_offset(head as u64);
            let mut pending: Option<(u64, u64)> = None;
            for slot in group.iter().map(slot_of) {
                let (w, mask) = (slot / 64, 1u64 << (slot % 64));
                match &mut pending {
                    Some((word, m)) if *word == w => *m |= mask,
                    _ => {
                        if let Some((word, m)) = pending.replace((w, mask)) {
                            ops.push(Op::ClearBits {
                                target: bitmap + word * 8,
                                mask: m,
                            });
                        }
                    }
                }
            }
            if let Some((word, m)) = pending {
                ops.push(Op::ClearBits {
                    target: bitmap + word * 8,
                    mask: m,
                });
            }
            if heap.releases_run(arena, head, run, group.len() as u32) {
                heap.run_release_ops(head as u64, run.class, ops);
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
    /// with the same (sorted) list and no heap change between.
    pub(crate) fn apply_frees(&self, frees: &[Free]) {
        self.for_each_run_group(frees, |heap, head, group, arena| {
            let run = &arena.runs[&head];
            let release = heap.releases_run(arena, head, run, group.len() as u32);
            let run = arena.runs.get_mut(&head).expect("run exists");
            for slot in group.iter().map(slot_of) {
                run.bitmap[slot as usize / 64] &= !(1 << (slot % 64));
            }
            run.free += group.len() as u32;
            add(
                &heap.counters.class_live[run.class as usize],
                -(group.len() as i64),
            );
            let key = (run.class, run.fingerprint);
            let class = run.class;
            if release {
                arena.runs.remove(&head);
                add(&heap.counters.class_runs[class as usize], -1);
                unlist(arena.bins.get_mut(&key).expect("bin exists"), head);
                lock(&heap.chunks).give(head as u64, CLASSES[class as usize].run_chunks as u64);
            } else if !run.listed {
                run.listed = true;
                arena
                    .bins
                    .get_mut(&key)
                    .expect("bin exists")
                    .partial
                    .push(head);
            }
        });
        for f in frees {
            if let ObjectRef::Span { first, count, .. } = f.object {
                add(&self.counters.large_live, -1);
                add(&self.counters.large_chunks, -(count as i64));
                lock(&self.chunks).give(first, count);
            }
        }
    }

    /// Calls `f(heap, run head, the frees in it, owning arena)` for each run with frees; `frees`
    /// must be sorted by [`plan_frees`](Self::plan_frees) so each run's frees are together.
    fn for_each_run_group(
        &self,
        frees: &[Free],
        mut f: impl FnMut(&Heap, u32, &[Free], &mut Arena),
    ) {
        let mut rest = frees;
        while let Some(Free {
            object: ObjectRef::Slot { first, .. },
        }) = rest.first()
        {
            let head = *first;
            let end = rest
                .iter()
                .position(|g| !matches!(g.object, ObjectRef::Slot { first, .. } if first == head))
                .unwrap_or(rest.len());
            let (group, tail) = rest.split_at(end);
            let mut arena =
                lock(&self.arenas[self.owner[head as usize].load(Ordering::Relaxed) as usize]);
            f(self, head as u32, group, &mut arena);
            rest = tail;
        }
    }

    /// A run left empty is released unless it is the one its bin allocates from.
    fn releases_run(&self, arena: &Arena, head: u32, run: &Run, freed: u32) -> bool {
        run.free + freed == CLASSES[run.class as usize].slots
            && arena
                .bins
                .get(&(run.class, run.fingerprint))
                .is_none_or(|b| b.current != Some(head))
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

    /// Reserves chunks for log space (never made persistent: the log refers to them only while
    /// it may need replaying).
    pub(crate) fn reserve_log_space(&self, bytes: u64) -> Result<(u64, u64)> {
        let count = bytes.div_ceil(CHUNK_SIZE);
        let first = self.take_chunks(count, bytes)?;
        Ok((self.meta.geometry.chunk_offset(first), count * CHUNK_SIZE))
    }

    /// Returns log space from [`reserve_log_space`](Self::reserve_log_space).
    pub(crate) fn release_log_space(&self, offset: u64, len: u64) {
        let first = (offset - self.meta.geometry.heap_offset) / CHUNK_SIZE;
        lock(&self.chunks).give(first, len / CHUNK_SIZE);
    }

    /// Current usage.
    pub(crate) fn stats(&self) -> HeapStats {
        let c = &self.counters;
        let mut stats = HeapStats {
            heap_bytes: self.meta.geometry.chunk_count * CHUNK_SIZE,
            large_objects: c.large_live.load(Ordering::Relaxed),
            ..HeapStats::default()
        };
        let large_chunks = c.large_chunks.load(Ordering::Relaxed);
        stats.bytes_in_use = large_chunks * CHUNK_SIZE;
        stats.allocated_bytes = large_chunks * CHUNK_SIZE;
        stats.live_objects = stats.large_objects;
        for (i, class) in CLASSES.iter().enumerate() {
            let runs = c.class_runs[i].load(Ordering::Relaxed);
            let live = c.class_live[i].load(Ordering::Relaxed);
            if runs == 0 && live == 0 {
                continue;
            }
            stats.bytes_in_use += runs * class.run_chunks as u64 * CHUNK_SIZE;
            stats.allocated_bytes += live * class.unit as u64;
            stats.live_objects += live;
            stats.classes.push(ClassStats {
                unit: class.unit as u64,
                runs,
                live_objects: live,
            });
        }
        stats
    }

    pub(crate) fn meta(&self) -> &HeapMeta {
        &self.meta
    }
}

fn slot_of(free: &Free) -> u64 {
    match free.object {
        ObjectRef::Slot { slot, .. } => slot,
        ObjectRef::Span { .. } => unreachable!("run groups hold slots only"),
    }
}

fn unlist(bin: &mut Bin, head: u32) {
    if bin.current == Some(head) {
        bin.current = None;
    }
    if let Some(i) = bin.partial.iter().position(|&h| h == head) {
        bin.partial.swap_remove(i);
    }
}

//! [`TxCore`]: the writer's state, and the steps of a transaction on the log and the heap.

use std::sync::Arc;

use super::deferred::Deferred;
use super::ranges::RangeMap;
use super::write_set::{changed_runs, WriteSet};
use crate::error::{Error, Result};
use crate::heap::{Free, ObjectRef, Reservation};
use crate::layout::log::{Op, INLINE_WRITE_MAX};
use crate::log::recovery::{apply_ops_then, data_hash};
use crate::log::writer::LogWriter;
use crate::persistent::Persistent;
use crate::shared::Shared;

/// The pool's single writer: the log writer and the state of the open transaction. Lives inside
/// the pool's write lock, so holding `&mut TxCore` means holding exclusive write access.
pub(crate) struct TxCore {
    pub(crate) shared: Arc<Shared>,
    log: LogWriter,
    /// What the transaction wrote to objects it did not allocate, kept in DRAM until the
    /// commit logs it and then copies it into place.
    writes: WriteSet,
    /// `(target, len)` of every redo entry the commit being made logged, in log order.
    data: Vec<(u64, u64)>,
    /// The object ranges the commit being made frees: their shadows are neither logged nor
    /// applied (the bytes are dead once it commits).
    freed_ranges: RangeSet,
    /// Objects allocated by this transaction: written in place, not through the write set. Value: fingerprint
    /// and index in `reservations`.
    fresh: RangeMap<(u64, usize)>,
    fresh_ranges: Vec<(u64, u64)>,
    ops: Vec<Op>,
    reservations: Vec<Reservation>,
    frees: Vec<Free>,
    /// Offsets freed by this transaction, to refuse a second free.
    freed: RangeMap<()>,
    /// Heap metadata the last commit applied but did not flush: flushed just before the next
    /// fence, which makes it durable before that transaction can overwrite the log describing it,
    /// or carried by that transaction's commit record. Flushing it at commit would cost a second
    /// fence in effect: the next locked instruction (the pool's lock release) waits for
    /// outstanding write-backs.
    deferred: Deferred,
    /// The ops the commit being made logs: its own with carried words folded in.
    logged_ops: Vec<Op>,
    /// The `[start, end)` targets of the heap ops of the committed logs recovery could still
    /// replay, per slot: a metadata word they touch must not be changed outside the log.
    live_ops: [Vec<(u64, u64)>; 2],
    /// Slots freed by single stores whose runs have not been told yet: told in a batch before
    /// the heap's state is next needed, keeping locks off the free's path (a locked instruction
    /// after its flush would wait for the write-back).
    direct_frees: Vec<(u32, u64)>,
    /// The ranges the newest committed log rewrites when recovery replays it (`last_data`) and
    /// those its data hash covers (`last_fresh`), while that log is the newest.
    /// Recovery takes a commit whose hash does not match the pool for torn and rolls it back,
    /// and replays a committed log's redo entries while it is the newest or the one before, so
    /// nothing may change those bytes outside a log until a newer log is durable: an object
    /// holding some of them is freed through a logged transaction, not a single store (whose
    /// space a later allocation could fill while the replay still overwrites it), and the space
    /// of an object the commit itself freed is held (`held_slots`, `held_spans`) until then.
    ///
    /// Kept as that commit's own redo and new-object lists (swapped in, not copied), with an
    /// index built only when a large one is asked.
    last_data: Vec<(u64, u64)>,
    last_fresh: Vec<(u64, u64)>,
    /// Index of `last_data` and `last_fresh`, or of the commit being made's ranges.
    index: RangeSet,
    /// Slots freed durably but not yet handed back to their runs (see `last_data`).
    held_slots: Vec<(u32, u64)>,
    /// Large objects `(first chunk, chunks)` freed durably whose chunks are held (see `last_data`).
    held_spans: Vec<(u64, u64)>,
    /// Set when the transaction may not commit: [`Tx::abort`](crate::Tx::abort) was called or a
    /// nested transaction failed.
    pub(crate) doomed: Option<crate::error::AbortCause>,
    pub(crate) depth: u32,
    /// Set when a write-back failed: what the media holds is unknown, so no further write may
    /// build on it and close must not retire the logs (the next open's recovery decides).
    pub(crate) poisoned: bool,
}

impl TxCore {
    pub(crate) fn new(shared: Arc<Shared>, next_gen: u64) -> TxCore {
        TxCore {
            shared,
            log: LogWriter::new(next_gen),
            writes: WriteSet::default(),
            data: Vec::new(),
            freed_ranges: RangeSet::default(),
            fresh: RangeMap::default(),
            fresh_ranges: Vec::new(),
            ops: Vec::new(),
            reservations: Vec::new(),
            frees: Vec::new(),
            freed: RangeMap::default(),
            deferred: Deferred::default(),
            logged_ops: Vec::new(),
            live_ops: [Vec::new(), Vec::new()],
            direct_frees: Vec::new(),
            last_data: Vec::new(),
            last_fresh: Vec::new(),
            index: RangeSet::default(),
            held_slots: Vec::new(),
            held_spans: Vec::new(),
            doomed: None,
            depth: 0,
            poisoned: false,
        }
    }

    /// The address of pool offset `offset`.
    #[inline]
    pub(crate) fn address(&self, offset: u64) -> *mut u8 {
        self.shared
            .media
            .region
            .base()
            .wrapping_add(offset as usize)
    }

    /// The address through which the transaction reads `[offset, offset + len)`, aligned to
    /// `align`: its own shadow of the bytes if it wrote them, else the pool.
    ///
    /// The range must lie inside the pool and `align` (a power of two) must divide `offset`.
    #[inline]
    pub(crate) fn read_ptr(&self, offset: u64, len: u64, align: u64) -> *const u8 {
        // SAFETY: the caller's contract puts the range inside the pool; this is the pool's only
        // writer, and it is not writing while `&self` is held.
        unsafe { self.writes.read(self.base(), offset, len, align) }
    }

    /// The address through which the transaction writes `[offset, offset + len)`, aligned to
    /// `align`: in place inside an object it allocated (which exists only if it commits), else a
    /// shadow in the write set, logged and applied at commit. No fence, no log entry.
    ///
    /// The range must lie inside the pool and `align` (a power of two) must divide `offset`.
    #[inline]
    pub(crate) fn write_ptr(&mut self, offset: u64, len: u64, align: u64) -> Result<*mut u8> {
        if self.poisoned {
            // A write-back failed: what the media holds is unknown, and no write may build on it.
            return Err(self.refuse_write());
        }
        if len == 0 || self.fresh.containing(offset, len).is_some() {
            return Ok(self.address(offset));
        }
        let base = self.base();
        // SAFETY: as in `read_ptr`; `&mut self` excludes every other access.
        Ok(unsafe { self.writes.write(base, offset, len, align) })
    }

    /// Prepares writes to several ranges (shadows made now), so that the addresses asked next
    /// with [`write_ptr`](Self::write_ptr) stay valid together: a shadow made later never
    /// merges one handed out before.
    pub(crate) fn prepare_writes(&mut self, ranges: &[(u64, u64, u64)]) -> Result<()> {
        for &(offset, len, align) in ranges {
            self.write_ptr(offset, len, align)?;
        }
        Ok(())
    }

    fn base(&self) -> *mut u8 {
        self.shared.media.region.base()
    }

    /// Flushes the last commit's heap metadata and data, then fences. `commit`: the fence
    /// makes this transaction's commit record durable, so the redo ranges it logged carry the
    /// pending data they cover (see `deferred`); any other fence flushes everything.
    fn fence(&mut self, commit: bool) {
        let domain = &self.shared.media.domain;
        let logged: &[(u64, u64)] = if commit { &self.data } else { &[] };
        // Heap metadata is rewritten by the very next allocations and frees; ask for it back
        // while the write-back completes (see `Domain::prefetch_write`).
        self.deferred.flush(domain, true, logged);
        domain.fence();
    }

    /// After a commit: ask for the lines the next transaction will write first, its log slot's
    /// first entries and (for a small transaction) the data just written, which a loop writes
    /// again.
    fn prefetch_next(&self) {
        let domain = &self.shared.media.domain;
        // Streamed log lines are written without reading them: asking for them would only
        // bring into the cache lines the non-temporal stores must then evict.
        if !domain.streams_log() {
            domain.prefetch_write(self.log.next_slot_offset(), 3 * 64);
        }
        // The transaction just committed: its redo list is `last_data` now.
        if self.last_data.len() <= 4 {
            for &(target, len) in &self.last_data {
                if len <= 512 {
                    domain.prefetch_write(target, len);
                }
            }
        }
    }

    /// Writes `bytes` at `offset` as the transaction's (applied at commit).
    pub(crate) fn write(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        let to = self.write_ptr(offset, bytes.len() as u64, 1)?;
        // SAFETY: `write_ptr` returned `bytes.len()` writable bytes (a shadow or a new object),
        // which `bytes`, borrowed from elsewhere, does not overlap.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), to, bytes.len()) };
        Ok(())
    }

    /// Zeroes `len` bytes at `offset` as the transaction's (applied at commit).
    pub(crate) fn zero(&mut self, offset: u64, len: u64) -> Result<()> {
        let to = self.write_ptr(offset, len, 1)?;
        // SAFETY: `write_ptr` returned `len` writable bytes.
        unsafe { core::ptr::write_bytes(to, 0, len as usize) };
        Ok(())
    }

    /// Allocates a block for `size` bytes of type `fingerprint`, which exists only if the
    /// transaction commits. Its contents are left as they are; the caller initialises them.
    pub(crate) fn alloc_raw(&mut self, size: u64, align: u64, fingerprint: u64) -> Result<u64> {
        self.sync_heap();
        let heap = &self.shared.heap;
        let offset = heap.reserve(
            size,
            align,
            fingerprint,
            &mut self.ops,
            &mut self.reservations,
        )?;
        let len = size.max(1);
        self.fresh
            .insert(offset, len, (fingerprint, self.reservations.len() - 1));
        self.fresh_ranges.push((offset, len));
        Ok(offset)
    }

    /// The object at `offset` if it was allocated by this transaction: `(len, fingerprint)`.
    pub(crate) fn fresh_object(&self, offset: u64) -> Option<(u64, u64)> {
        match self.fresh.containing(offset, 1) {
            Some((start, len, (fp, _))) if start == offset => Some((len, fp)),
            _ => None,
        }
    }

    /// The reservation of the object this transaction allocated at `offset`.
    pub(crate) fn reservation_at(&self, offset: u64) -> Option<Reservation> {
        match self.fresh.containing(offset, 1) {
            Some((start, _, (_, index))) if start == offset => {
                self.reservations.get(index).copied()
            }
            _ => None,
        }
    }

    /// Frees `object` when the transaction commits.
    pub(crate) fn free(&mut self, offset: u64, object: ObjectRef, fresh: bool) -> Result<()> {
        let twice = self
            .freed
            .containing(offset, 1)
            .is_some_and(|(start, _, ())| start == offset);
        // Not fresh: the persistent bitmap is the truth (nothing else is reserved in this pool).
        if twice || !(fresh || self.shared.heap.meta().is_allocated(&object)) {
            return Err(Error::InvalidPointer {
                offset,
                reason: crate::error::PointerRejection::DoubleFree,
            });
        }
        self.freed.insert(offset, 1, ());
        self.frees.push(Free {
            object,
            held: false,
        });
        Ok(())
    }

    /// Frees `object` at once, outside any transaction, durably: one 8-byte store to its
    /// metadata word (a bitmap bit or a large object's table entry), which cannot tear, then one
    /// fence. A free that empties its run (which may then be released), or whose word a log
    /// recovery may still replay touches, goes through a logged transaction instead.
    ///
    /// `object` must have been located by [`locate`](crate::heap::resolve::locate), which checks
    /// that it is allocated.
    pub(crate) fn free_now(&mut self, offset: u64, object: ObjectRef) -> Result<()> {
        debug_assert!(self.is_empty());
        let shared = &*self.shared;
        let meta = shared.heap.meta();
        let (word, value) = match object {
            ObjectRef::Slot { first, slot, .. } => {
                let word = meta.bitmap_word_offset(first, slot / 64);
                (
                    word,
                    shared.media.region.read_u64(word) & !(1 << (slot % 64)),
                )
            }
            ObjectRef::Span { first, .. } => (meta.geometry.chunk_entry_offset(first), 0),
        };
        let replayed = self
            .live_ops
            .iter()
            .flatten()
            .any(|&(start, end)| start <= word && word < end);
        let empties_run = match object {
            ObjectRef::Slot {
                first, class, slot, ..
            } => shared.heap.run_would_empty(first, class, slot),
            ObjectRef::Span { .. } => false,
        };
        let mut hashed = || {
            hashes(
                &self.last_data,
                &self.last_fresh,
                &mut self.index,
                offset,
                object.size(),
            )
        };
        if replayed || empties_run || hashed() {
            self.free(offset, object, false)?;
            return self.commit();
        }
        // Store and start the write-back first; what follows until the fence overlaps it.
        shared.media.region.write_u64(word, value);
        let domain = &shared.media.domain;
        domain.flush(word & !63, 64);
        self.deferred.flush(domain, false, &[]);
        match object {
            ObjectRef::Slot {
                first, class, slot, ..
            } => {
                self.direct_frees.push((first as u32, slot));
                shared.heap.note_direct_free(class);
                domain.fence();
                if self.direct_frees.len() >= DIRECT_FREE_BATCH {
                    self.sync_heap();
                }
            }
            ObjectRef::Span { first, count, .. } => {
                domain.fence();
                shared.heap.give_span(first, count);
            }
        }
        let failure = self.shared.media.domain.take_failure();
        self.durability(failure)
    }

    /// Tells the heap's runs about the slots freed by single stores since it last looked.
    pub(crate) fn sync_heap(&mut self) {
        if !self.direct_frees.is_empty() {
            self.shared.heap.apply_direct_frees(&mut self.direct_frees);
        }
    }

    /// Allocates and initialises one object outside any transaction, durably, with one fence:
    /// what a transaction holding only this allocation would do, without its bookkeeping.
    pub(crate) fn alloc_now(
        &mut self,
        size: u64,
        align: u64,
        fingerprint: u64,
        init: impl FnOnce(&crate::region::Region, u64),
    ) -> Result<u64> {
        debug_assert!(self.is_empty());
        self.sync_heap();
        let shared = &*self.shared;
        let media = &shared.media;
        let offset = match shared.heap.reserve(
            size,
            align,
            fingerprint,
            &mut self.ops,
            &mut self.reservations,
        ) {
            Ok(offset) => offset,
            Err(e) => {
                self.abort();
                return Err(e);
            }
        };
        let range = [(offset, size.max(1))];
        init(&media.region, offset);
        media.domain.flush(offset, range[0].1);
        let hash = data_hash(media, std::iter::empty(), &range);
        let failure = self.log_commit(hash, &range, None)?;
        self.release_held();
        self.last_data.clear();
        self.last_fresh.clear();
        self.last_fresh.push(range[0]);
        self.index.clear();
        self.log.finish();
        self.prefetch_next();
        self.ops.clear();
        self.reservations.clear();
        self.durability(failure).map(|()| offset)
    }

    /// Whether the transaction has changed anything.
    fn is_empty(&self) -> bool {
        self.writes.is_empty()
            && !self.log.is_started()
            && self.ops.is_empty()
            && self.fresh_ranges.is_empty()
            && self.frees.is_empty()
    }

    /// Makes the transaction durable with one fence: flush the new objects, log the write set
    /// as redo entries and the commit record, fence, then copy the write set into place and
    /// apply the heap ops (both flushed before the next fence, or carried by the next commit;
    /// the log covers them until then).
    pub(crate) fn commit(&mut self) -> Result<()> {
        if self.poisoned {
            // A write-back of this transaction failed (and the closure went on): it aborts.
            return Err(self.refuse_commit());
        }
        if self.is_empty() {
            self.reset();
            return Ok(());
        }
        if !self.frees.is_empty() {
            self.sync_heap();
            // An object this transaction allocates and frees is dead once it commits: its bytes
            // are neither flushed nor covered by the data hash. Hashed, they would tie the
            // commit's validity to space the allocator hands out again at once (a later
            // allocation, or the next log's extension, rewrites it while this log is the
            // newest), and a crash then would find the hash broken and undo a committed
            // transaction.
            let freed = &self.freed;
            self.fresh_ranges.retain(|&(offset, _)| {
                freed
                    .containing(offset, 1)
                    .is_none_or(|(start, _, ())| start != offset)
            });
        }
        let shared = &*self.shared;
        let media = &shared.media;
        for &(offset, len) in &self.fresh_ranges {
            media.domain.flush(offset, len);
        }
        if !self.frees.is_empty() {
            // What this commit's hash covers is held until a newer log is durable; what it
            // frees is dead, and its shadows are dropped.
            let index = &mut self.index;
            index.clear();
            for &range in &self.fresh_ranges {
                index.push(range);
            }
            self.freed_ranges.clear();
            for f in &mut self.frees {
                let (start, len) = object_range(&f.object, shared.heap.meta());
                f.held = index.overlaps(start, len);
                self.freed_ranges.push((start, len));
            }
        }
        shared.heap.plan_frees(&mut self.frees, &mut self.ops);
        let hash = data_hash(media, std::iter::empty(), &self.fresh_ranges);
        let write = match self.log_writes() {
            Ok(write) => write,
            Err(e) => {
                self.abort();
                return Err(e);
            }
        };
        // Lent out while `log_commit` borrows the transaction; returned to keep its buffer.
        let ranges = std::mem::take(&mut self.fresh_ranges);
        let failure = match self.log_commit(hash, &ranges, write.as_ref()) {
            Ok(failure) => failure,
            Err(e) => {
                // The commit record could not be written and the transaction was rolled back:
                // these ranges belong to no commit. The buffer is kept for the next one.
                self.fresh_ranges = ranges;
                self.fresh_ranges.clear();
                return Err(e);
            }
        };
        // This log is now the newest, its hash over these ranges; the previous one's buffer is
        // reused for the next transaction.
        self.fresh_ranges = std::mem::replace(&mut self.last_fresh, ranges);
        // What the previous log's hash covered may change now.
        self.release_held();
        std::mem::swap(&mut self.data, &mut self.last_data);
        if !self.index.is_empty() {
            self.index.clear();
        }
        if !self.frees.is_empty() {
            self.apply_frees();
        }
        self.log.finish();
        self.prefetch_next();
        self.reset();
        self.durability(failure)
    }

    /// Logs what the live shadows changed as redo entries, except in objects the commit frees.
    /// Only the runs that differ from the pool are logged (and later written back): a shadow
    /// may span much more than was written, after a read merged several. A transaction whose
    /// only change is one short run gets it back unlogged, for the commit record to hold.
    fn log_writes(&mut self) -> Result<Option<InlineWrite>> {
        if self.writes.is_empty() {
            return Ok(None);
        }
        let shared = &*self.shared;
        let (log, data, freed) = (&mut self.log, &mut self.data, &mut self.freed_ranges);
        let check_freed = !self.frees.is_empty();
        let mut result = Ok(());
        let (mut runs, mut held) = (0u64, None::<InlineWrite>);
        self.writes.for_each(|target, bytes| {
            if result.is_err() || (check_freed && freed.overlaps(target, bytes.len() as u64)) {
                return;
            }
            // SAFETY: the shadow stands for pool bytes inside the pool; nothing writes the pool
            // during the commit but this writer, which is reading here.
            let old = unsafe { shared.media.region.slice(target, bytes.len() as u64) };
            changed_runs(bytes, old, |start, len| {
                if result.is_err() {
                    return;
                }
                let (at, piece) = (target + start as u64, &bytes[start..start + len]);
                runs += 1;
                if runs == 1 && len <= INLINE_WRITE_MAX {
                    held = Some(InlineWrite::new(at, piece));
                    data.push((at, len as u64));
                    return;
                }
                // A second run: the first is logged as a `DATA` entry after all, first.
                if let Some(first) = held.take() {
                    let (t, b) = first.parts();
                    result = log.data(&shared.media, &shared.heap, t, b, |_, _| {});
                    if result.is_err() {
                        return;
                    }
                }
                result = log.data(&shared.media, &shared.heap, at, piece, |t, l| {
                    data.push((t, l))
                });
            });
        });
        result.map(|()| held)
    }

    /// Logs the commit record (the transaction's ops, with the pending words they change folded
    /// in, and `ranges`), fences, and applies the write set and the ops; aborts if the record
    /// cannot be logged. Returns the fence's write-back failure, if any.
    fn log_commit(
        &mut self,
        hash: u64,
        ranges: &[(u64, u64)],
        write: Option<&InlineWrite>,
    ) -> Result<Option<std::io::Error>> {
        let shared = &*self.shared;
        let media = &shared.media;
        self.deferred
            .fold_into(&media.region, &self.ops, &mut self.logged_ops);
        let write = write.map(InlineWrite::parts);
        if let Err(e) = self
            .log
            .commit(media, &shared.heap, hash, &self.logged_ops, ranges, write)
        {
            self.deferred.drop_carry();
            self.abort();
            return Err(e);
        }
        std::mem::swap(&mut self.ops, &mut self.logged_ops);
        Ok(self.make_durable_and_apply())
    }

    /// The commit fence and what follows it: the log now records the writes and ops recovery
    /// could replay; apply them (flushed or carried by the next commit). Returns a write-back
    /// failure, if any.
    fn make_durable_and_apply(&mut self) -> Option<std::io::Error> {
        self.fence(true);
        if let Some(slot) = self.log.current_slot() {
            let live = &mut self.live_ops[slot];
            live.clear();
            live.extend(self.ops.iter().map(|op| {
                let (target, len) = op.range();
                (target, target + len)
            }));
        }
        let media = &self.shared.media;
        let failure = media.domain.take_failure();
        // After a failed fence the commit record may not be durable, and bytes changed in place
        // could reach the media without it: leave the writes and ops to recovery, which replays
        // them if the record made it.
        if failure.is_none() {
            let deferred = &mut self.deferred;
            // What the redo entries logged, from the shadows, into place.
            let base = media.region.base();
            for &(target, len) in &self.data {
                // SAFETY: each logged run lies inside one live shadow and inside the pool; the
                // writer alone runs here.
                let from = unsafe { self.writes.read(base, target, len, 1) };
                // SAFETY: `len` readable bytes of a shadow, disjoint from the pool.
                let bytes = unsafe { core::slice::from_raw_parts(from, len as usize) };
                media.region.write(target, bytes);
                deferred.note_data(target, len);
            }
            apply_ops_then(media, &self.ops, |target, len| deferred.note(target, len));
        }
        failure
    }

    /// A commit's outcome: `Ok`, or the write-back failure that makes its durability unknown
    /// (and poisons the pool).
    #[inline]
    fn durability(&mut self, failure: Option<std::io::Error>) -> Result<()> {
        match failure {
            None => Ok(()),
            Some(source) => Err(self.poison(source)),
        }
    }

    /// A write in a transaction whose write-back failed earlier (kept out of line).
    #[cold]
    #[inline(never)]
    fn refuse_write(&self) -> Error {
        Error::Poisoned {
            location: self.shared.location.clone(),
        }
    }

    /// The commit of a transaction whose write-back failed earlier: aborted instead.
    #[cold]
    #[inline(never)]
    fn refuse_commit(&mut self) -> Error {
        self.abort();
        Error::Poisoned {
            location: self.shared.location.clone(),
        }
    }

    /// Marks the pool poisoned by a failed write-back; the error to report (kept out of line).
    #[cold]
    #[inline(never)]
    fn poison(&mut self, source: std::io::Error) -> Error {
        self.poisoned = true;
        Error::CommitOutcomeUnknown {
            location: self.shared.location.clone(),
            source,
        }
    }

    /// Forgets everything the transaction wrote (its write set never reached the pool; the
    /// objects it allocated are given back), and its frees.
    ///
    /// The heap is put back exactly as the transaction found it by undoing its reservations in
    /// reverse. A log that continued into heap space may have taken chunks the transaction had
    /// freed in memory (an empty run given back to make room), which undoing must take back:
    /// such a log is retired first, so that no recovery reads it and its chunks are free again
    /// before the reservations are undone. Every log that wrote an entry is retired (one more
    /// fence), so an uncommitted newest log always means an interrupted transaction. A
    /// transaction writes its log only when it commits, so only a commit that failed part-way
    /// has one.
    ///
    /// On a poisoned pool (a write-back failed) nothing is made durable: the media's state is
    /// unknown, and the next open's recovery decides from the log the media holds.
    pub(crate) fn abort(&mut self) {
        let written = self.log.current_slot().is_some();
        // A started log moves the next transaction to the other slot, whose log may still be the
        // only record of unflushed metadata: make that durable first.
        if self.log.is_started() && !self.poisoned {
            self.fence(false);
            // The transaction did not commit; but a failed write-back (of the last commit's
            // writes and metadata) leaves the media unknown.
            self.poisoned |= self.shared.media.domain.take_failure().is_some();
        }
        if self.log.is_started() {
            // The aborted log is now the newest: the last commit's hash no longer matters.
            self.forget_last_commit();
        }
        if let Some(slot) = self.log.current_slot() {
            self.live_ops[slot].clear();
        }
        self.log.finish();
        if written && !self.poisoned {
            // The last commit's writes and metadata are durable (the fence above). Retired,
            // the aborted log never looks to recovery like an interrupted one whose older log
            // is still needed while the next transaction overwrites that older log's slot.
            self.log.retire(&self.shared.media, &self.shared.heap);
            self.live_ops.iter_mut().for_each(Vec::clear);
            self.poisoned |= self.shared.media.domain.take_failure().is_some();
        }
        for &r in self.reservations.iter().rev() {
            self.shared.heap.unreserve(r);
        }
        self.reset();
    }

    fn reset(&mut self) {
        self.writes.clear();
        self.data.clear();
        self.fresh.clear();
        self.fresh_ranges.clear();
        self.ops.clear();
        self.reservations.clear();
        self.frees.clear();
        self.freed.clear();
        self.doomed = None;
        self.depth = 0;
    }

    /// Retires the logs so the next open has nothing to recover (clean close). A failed
    /// write-back poisons the pool and is returned: the logs then stay for the next open's
    /// recovery, as after a crash.
    pub(crate) fn close(&mut self) -> std::io::Result<()> {
        // A poisoned pool may hold a transaction's state, half committed or aborted: the next
        // open's recovery decides it from the media.
        if self.poisoned {
            return Ok(());
        }
        debug_assert!(self.is_empty());
        self.fence(false);
        // Retiring says the last commit's metadata is durable: only if the fence made it so.
        let mut failure = self.shared.media.domain.take_failure();
        if failure.is_none() {
            self.log.retire(&self.shared.media, &self.shared.heap);
            self.live_ops.iter_mut().for_each(Vec::clear);
            self.forget_last_commit();
            failure = self.shared.media.domain.take_failure();
        }
        match failure {
            None => Ok(()),
            Some(e) => {
                self.poisoned = true;
                Err(e)
            }
        }
    }

    /// A newer log than the last commit's is durable: its hash no longer matters.
    fn forget_last_commit(&mut self) {
        self.release_held();
        self.last_data.clear();
        self.last_fresh.clear();
        self.index.clear();
    }

    /// Hands the committed frees to the heap, holding back the space the commit's hash covers.
    #[inline]
    fn apply_frees(&mut self) {
        let held = &mut self.held_slots;
        self.shared
            .heap
            .apply_frees(&self.frees, |head, slot| held.push((head, slot)));
        for f in &self.frees {
            if let (true, ObjectRef::Span { first, count, .. }) = (f.held, f.object) {
                self.held_spans.push((first, count));
            }
        }
    }

    /// Hands back the space of objects freed while the last commit's hash covered it: called
    /// once a newer log is durable.
    #[inline]
    fn release_held(&mut self) {
        if !self.held_slots.is_empty() {
            self.direct_frees.append(&mut self.held_slots);
        }
        if !self.held_spans.is_empty() {
            for (first, count) in self.held_spans.drain(..) {
                self.shared.heap.release_span(first, count);
            }
        }
    }

    /// Writes `value` into a block this transaction allocated (in place: it exists only if the
    /// transaction commits).
    pub(crate) fn init<T: Persistent>(&mut self, offset: u64, value: &T) {
        self.shared
            .media
            .region
            .write(offset, crate::persistent::bytes_of(value));
    }
}

/// Slots freed by single stores kept before their runs are told (bounded memory; each batch takes
/// each arena's lock once).
const DIRECT_FREE_BATCH: usize = 256;

/// Whether the newest committed log rewrites (`data`, its redo entries) or hashes (`fresh`)
/// any of `[start, start + len)`. `index` is built from them on the first question about a
/// large set.
#[inline]
fn hashes(
    data: &[(u64, u64)],
    fresh: &[(u64, u64)],
    index: &mut RangeSet,
    start: u64,
    len: u64,
) -> bool {
    let end = start.saturating_add(len);
    let hit = |offset: u64, l: u64| offset < end && start < offset.saturating_add(l);
    if let ([], [(offset, l)]) = (data, fresh) {
        // The last commit allocated one object, as a single-object allocation does.
        return hit(*offset, *l);
    }
    if data.len() + fresh.len() <= 16 {
        return data.iter().any(|&(t, l)| hit(t, l)) || fresh.iter().any(|&(o, l)| hit(o, l));
    }
    if index.is_empty() {
        for &range in data {
            index.push(range);
        }
        for &range in fresh {
            index.push(range);
        }
    }
    index.overlaps(start, len)
}

/// The bytes an object occupies.
fn object_range(object: &ObjectRef, meta: &crate::heap::HeapMeta) -> (u64, u64) {
    match *object {
        ObjectRef::Slot {
            first,
            class,
            slot,
            size,
            ..
        } => (
            meta.slot_offset(first, &crate::layout::heap::CLASSES[class as usize], slot),
            size,
        ),
        ObjectRef::Span { first, size, .. } => (meta.geometry.chunk_offset(first), size),
    }
}

/// Byte ranges, answering whether any overlaps a given one: sorted on the first question after
/// a change (one sort per commit that asks), then a binary search per question.
#[derive(Debug, Default)]
struct RangeSet {
    /// `(start, end)`, sorted by start once `sorted`.
    ranges: Vec<(u64, u64)>,
    /// `max_end[i]`: the largest end among `ranges[..=i]`.
    max_end: Vec<u64>,
    sorted: bool,
}

impl RangeSet {
    fn clear(&mut self) {
        self.ranges.clear();
        self.sorted = false;
    }

    fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    fn push(&mut self, (offset, len): (u64, u64)) {
        self.ranges.push((offset, offset.saturating_add(len)));
        self.sorted = false;
    }

    fn overlaps(&mut self, start: u64, len: u64) -> bool {
        if self.ranges.is_empty() {
            return false;
        }
        let end = start.saturating_add(len);
        if self.ranges.len() == 1 {
            let (s, e) = self.ranges[0];
            return s < end && start < e;
        }
        if !self.sorted {
            self.ranges.sort_unstable();
            self.max_end.clear();
            let mut max = 0;
            self.max_end.extend(self.ranges.iter().map(|&(_, e)| {
                max = max.max(e);
                max
            }));
            self.sorted = true;
        }
        // Ranges starting before `end`; one of them overlaps iff the largest end passes `start`.
        let n = self.ranges.partition_point(|&(s, _)| s < end);
        n > 0 && self.max_end[n - 1] > start
    }
}

/// A transaction's only change, short enough for its commit record to hold: its target and new
/// bytes, copied out of the write set.
struct InlineWrite {
    target: u64,
    len: usize,
    bytes: [u8; INLINE_WRITE_MAX],
}

impl InlineWrite {
    fn new(target: u64, piece: &[u8]) -> InlineWrite {
        let mut bytes = [0; INLINE_WRITE_MAX];
        bytes[..piece.len()].copy_from_slice(piece);
        InlineWrite {
            target,
            len: piece.len(),
            bytes,
        }
    }

    fn parts(&self) -> (u64, &[u8]) {
        (self.target, &self.bytes[..self.len])
    }
}

//! The transaction log: two slots used in turn, entries appended and fenced by the writer, and
//! replayed or rolled back by recovery at open.
//!
//! The protocol, and why each step is safe under any crash:
//!
//! 1. A transaction does not write existing objects in place: its first write to a range copies
//!    the range into its write set in DRAM (`tx::write_set`), and its reads of the range see the
//!    copy. Nothing of it reaches the pool or the log before it commits, so an abort, or a crash
//!    before the commit, leaves nothing to undo.
//! 2. New objects are written in place: they are unreachable until commit.
//! 3. Commit flushes the new objects, appends a `DATA` entry for each run of the write set that
//!    differs from the pool (its target and new bytes), then `COMMIT` (the heap metadata ops, the
//!    new-object ranges, and a hash of the new objects' contents) and fences once. The
//!    transaction is durable when that fence returns; only then are the `DATA` runs copied into
//!    place. Recovery counts a transaction as committed only if `COMMIT` is reached through
//!    whole entries *and* the hash matches what is in the pool, so a crash that persisted
//!    `COMMIT` but not all of the log or the new objects (all flushed under the same fence)
//!    drops it cleanly. So the bytes a commit hashes must not change until a newer log is
//!    durable: an object the newest commit wrote and freed is not reused (nor freed by a single
//!    store) before then, and an object it allocated and freed again is left out of the hash,
//!    since the next log may take its space at once. Likewise what a committed log's `DATA`
//!    entries write is written again whenever recovery replays that log: an object they cover is
//!    freed through a logged transaction, never a single store, while that log is the newest,
//!    and a commit does not log writes to objects it frees.
//!
//!    Format 3.0 logged `UNDO` entries (old bytes, fenced before each in-place write) instead;
//!    recovery still rolls them back, for pools that version left interrupted.
//! 4. Heap metadata the commit changes is also changed outside the log in one case: freeing one
//!    object outside a transaction is a single 8-byte store (a bitmap bit or a table entry),
//!    failure-atomic by itself, done only when no op of a log recovery could replay touches that
//!    word.
//! 5. The `DATA` runs and heap ops are then applied in place without a fence of their own.
//!    Transaction *n* + 1 writes the other slot, so transaction *n*'s log survives until *n* + 2
//!    starts; by then *n* + 1's commit fence has flushed the runs *n* wrote and either flushed
//!    the words *n* changed or, for a word *n* + 1 changes too, logged its whole new value in
//!    *n* + 1's `COMMIT` (a `Write` op in place of its own bit op), so the newest committed log
//!    describes everything not yet durable.
//!    A transaction that ends without committing, after its log started, flushes them and
//!    retires the logs (a `RETIRED` entry as the next generation, fenced) before the next one
//!    moves to the other slot. So a newest log without a commit is always a transaction that
//!    was interrupted, and the log before it is then untouched and committed.
//! 6. Recovery takes the newest slot *L* and the one before it, *P*. It replays *P*'s `DATA` and
//!    ops if *P* committed (idempotent: `DATA` rewrites bytes with the values they were given,
//!    and ops only set bits, clear bits and write words of heap metadata, which nothing but ops
//!    changes), then replays *L*'s if *L* committed or rolls *L*'s undo back (a 3.0 log) if not, fences, and writes a `RETIRED` entry so the decision is never made again. A crash
//!    during recovery repeats it with the same outcome.
//! 7. Entries are keyed by the pool's secret and bound to their offset and generation
//!    ([`crate::layout::log`]), so stored bytes a log copied, or stale entries of a reused slot,
//!    never parse as live entries. Each entry records whether every earlier entry of its log was
//!    fenced before it; an invalid entry followed by such an entry was durable, so recovery
//!    refuses the newest log as damaged (naming the slot and offset) rather than roll back part
//!    of it. A log that wrote nothing does not use up its generation, and a log that ended with
//!    entries unflushed has them made durable before the next log starts: otherwise the next
//!    log could overwrite the one a crash shows as the newest.
//! 8. The previous log *P* is still needed while the newest transaction *L* has not committed:
//!    *P*'s writes and ops may not be durable (step 5: *L*'s commit fence would flush them), and no transaction
//!    after *L* has started, so *P*'s slot is untouched. Recovery then refuses *P* if it shows
//!    damage, stops without a commit record, or has a first entry that fails its checksum
//!    in a way no `RETIRED` entry torn over it explains (step 5's retire, and recovery's, are
//!    the only writes to *P*'s slot while *L* is uncommitted). Once *L* has committed, the next transaction may be overwriting *P*'s
//!    slot, and *P*'s ops are durable or carried by *L*'s commit: an invalid entry in *P* is
//!    expected then, and *P* is read only for the ops of a commit it reaches through valid
//!    entries.
//!
//! # A fence that fails
//!
//! Only msync reports write-back errors on real systems (a cache-line write-back has none), and
//! a [`FaultPlan`](crate::FaultPlan) can fail any fence, of the simulated domain too. After a
//! failed fence, what it should have made durable may be lost for good (Linux drops the pages
//! whose write-back failed, and a later msync does not write them again), so the writer no
//! longer knows what the media holds. Every failure therefore *poisons* the pool: its memory
//! stays readable, every later write returns [`Error::Poisoned`](crate::Error::Poisoned), and
//! nothing more is made durable, neither a commit nor a retire, so the next open's recovery
//! decides from the logs the media holds, exactly as after a crash at that fence. Step by step:
//!
//! - Undo entries (step 1): the fence fails before anything is written in place under them. The
//!   write returns [`Error::Io`](crate::Error::Io), the transaction aborts (its memory is rolled
//!   back, its abort hooks run) and is absent after reopening: recovery rolls back the ranges
//!   whose entries were durable, and no other range was written. Every later write of the
//!   transaction returns [`Error::Poisoned`](crate::Error::Poisoned) (the failed entries may be
//!   lost though their ranges count as logged, and an entry fenced after them would read as
//!   proof that they were durable), and a closure that swallows the errors and returns `Ok`
//!   gets [`Error::Poisoned`](crate::Error::Poisoned) from the commit, which aborts instead.
//! - Commit (step 3): the record may or may not be durable:
//!   [`Error::CommitOutcomeUnknown`](crate::Error::CommitOutcomeUnknown), no hooks run, and the
//!   heap ops are *not* applied in place (step 5), since a metadata word changed in memory could
//!   reach the media without the record; recovery replays them if the record made it. The transaction is wholly there or
//!   wholly absent after reopening. A single-object allocation outside a transaction commits
//!   the same way, with the same error.
//! - A single-store free (step 4): the store may or may not be durable, and either is a whole
//!   state: [`Error::CommitOutcomeUnknown`](crate::Error::CommitOutcomeUnknown).
//! - Abort and close (step 5's retire): a failed fence before the `RETIRED` entry leaves the
//!   logs unretired (the last commit's metadata may not be durable, and its log describes it);
//!   a failed fence of the entry itself poisons. A close that fails reports nothing (it runs in
//!   `Drop`); the next open recovers.
//! - A log started after one that left entries unflushed makes them durable first (step 7). Only
//!   an aborted log leaves entries unflushed, and the retire that follows the abort starts the
//!   next log: a failure there is kept and poisons the pool when the retire checks its own
//!   fence. The `RETIRED` entry it wrote is harmless either way, since the abort's rollback was
//!   durable before it.
//! - Create and open: writing a header copy, the type table, recovery's fence (step 6) and its
//!   retire each fail the create or open with [`Error::Io`](crate::Error::Io), stopping before
//!   the next step. Header copies are written one fence apart, so the failure leaves at most
//!   one torn; recovery is idempotent, so the next open recovers the same pool. A create that
//!   fails (its fences, or the `fsync`s of the file and its directory) removes its temporary
//!   file and never gives the pool its name.

mod payload;
pub(crate) mod reader;
pub(crate) mod recovery;
pub(crate) mod writer;

use crate::layout::log::LOG_KEY_BYTES;

/// A new pool's log secret, from the operating system's random source.
pub(crate) fn new_key() -> [u8; LOG_KEY_BYTES] {
    let mut key = [0u8; LOG_KEY_BYTES];
    let mut filled = 0;
    while filled < key.len() {
        let rest = &mut key[filled..];
        // SAFETY: getrandom writes at most `rest.len()` bytes into `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n <= 0 {
            break;
        }
        filled += n as usize;
    }
    if filled < key.len() {
        // No getrandom: std's hash keys come from the operating system's random source too
        // (it aborts rather than go without one).
        use std::hash::{BuildHasher, Hasher};
        for (i, chunk) in key.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    key
}

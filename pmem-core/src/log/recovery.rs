//! Recovery at open: finish or undo what a crash interrupted, then retire the logs.

use super::reader::{
    first_entry_damage_proof, first_entry_damaged, parse, BlockSet, Entry, ParsedSlot,
};
use crate::error::{Corruption, LogCorruption, MetaFailure};
use crate::layout::log::{
    flags, kind, Op, DATA_HASH_SEED, ENTRY_HEADER, INLINE_WRITE_MAX, OP_SIZE,
};
use crate::media::Media;

/// What recovery found and did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecoveryReport {
    /// The newest transaction had not committed and was rolled back.
    pub rolled_back: bool,
    /// Heap metadata operations replayed from committed transactions.
    pub ops_replayed: u64,
    /// Undo entries applied (logs written by format 3.0).
    pub undo_applied: u64,
    /// Redo entries of committed transactions written into place again.
    pub redo_applied: u64,
}

/// The log as recovery sees it.
pub(crate) struct LogState {
    /// The newest slot, unless it is retired or there is none.
    pub newest: Option<ParsedSlot>,
    /// The slot before it, if it is the previous generation and not retired.
    pub previous: Option<ParsedSlot>,
    /// Generation for the next log.
    pub next_gen: u64,
}

/// Reads both log slots.
pub(crate) fn read_state(media: &Media) -> LogState {
    let slots: Vec<ParsedSlot> = (0..2)
        .filter_map(|i| parse(&media.region, &media.geometry, &media.log_key, i))
        .collect();
    let Some(newest) = slots.iter().max_by_key(|s| s.gen).cloned() else {
        return LogState {
            newest: None,
            previous: None,
            next_gen: 1,
        };
    };
    let next_gen = newest.gen + 1;
    if newest.is_retired() {
        return LogState {
            newest: None,
            previous: None,
            next_gen,
        };
    }
    let previous = slots
        .into_iter()
        .find(|s| s.index != newest.index && s.gen + 1 == newest.gen && !s.is_retired());
    LogState {
        newest: Some(newest),
        previous,
        next_gen,
    }
}

impl LogState {
    /// Whether the newest transaction ended: it committed, so the next one may have begun
    /// overwriting the previous log's slot, and the previous log's heap ops are durable or
    /// carried by the newest commit. An uncommitted newest log is always an interrupted
    /// transaction (an aborted log is retired before the next starts), so the previous log's
    /// slot is untouched and recovery needs its ops.
    pub(crate) fn newest_ended(&self, media: &Media) -> bool {
        self.newest
            .as_ref()
            .and_then(|newest| contents(media, newest).ok())
            .is_some_and(|newest| newest.committed(media))
    }

    /// Refuses logs recovery cannot trust, naming the slot and the offset: damage in the newest
    /// log (an invalid entry proven durable), damage in the previous log while recovery still
    /// needs it, or, in either log recovery reads, a chain of blocks the writer could not have
    /// made.
    ///
    /// The previous log is needed while the newest transaction is interrupted: its slot is
    /// untouched then, and it must show a whole commit record (only committed logs are followed
    /// by a newer generation without a `RETIRED` one between). Once the newest transaction has
    /// committed, the next one may be overwriting the previous log's slot, so an invalid entry
    /// there is expected, and the previous log is read only for the ops of a commit it reaches
    /// through valid entries.
    pub(crate) fn validate(&self, media: &Media) -> Result<(), Corruption> {
        let bad = |slot: u64, problem: LogCorruption| Err(Corruption::Log { slot, problem });
        // A log of the next generation whose first entry is invalid reads as never started;
        // a fenced entry of it later in its slot proves that first entry was durable.
        let next_slot = self.next_gen % 2;
        let r = &media.region;
        if parse(r, &media.geometry, &media.log_key, next_slot).is_none() {
            if let Some(evidence) =
                first_entry_damage_proof(r, &media.log_key, next_slot, self.next_gen)
            {
                return bad(
                    next_slot,
                    LogCorruption::Damaged {
                        pos: crate::layout::Geometry::log_slot_offset(next_slot),
                        evidence,
                    },
                );
            }
        }
        if let Some(newest) = &self.newest {
            if let Some(problem) = newest.problem {
                return bad(newest.index, problem);
            }
        }
        if let Some(previous) = &self.previous {
            let needed = !self.newest_ended(media);
            match previous.problem {
                Some(LogCorruption::Damaged { .. }) if !needed => {}
                Some(problem) => return bad(previous.index, problem),
                None if needed && !has_commit(previous) => {
                    let stop = previous.tail.map(|t| t.pos);
                    return bad(previous.index, LogCorruption::NoCommit { stop });
                }
                None => {}
            }
        } else if let Some(newest) = self.newest.as_ref().filter(|n| n.gen > 1) {
            let other = 1 - newest.index;
            let r = &media.region;
            if !self.newest_ended(media)
                && parse(r, &media.geometry, &media.log_key, other).is_none()
                && first_entry_damaged(r, &media.log_key, other, newest.gen - 1)
            {
                return bad(
                    other,
                    LogCorruption::FirstEntryNeeded {
                        pos: crate::layout::Geometry::log_slot_offset(other),
                        newer_slot: newest.index,
                    },
                );
            }
        }
        if let (Some(newest), Some(previous)) = (&self.newest, &self.previous) {
            let mut earlier = BlockSet::default();
            for &(o, l) in &previous.blocks {
                earlier.insert(o, l);
            }
            for &(o, l) in &newest.blocks {
                if let Some((po, pl)) = earlier.overlapping(o, l) {
                    return bad(
                        newest.index,
                        LogCorruption::ExtensionOverlap {
                            offset: o,
                            len: l,
                            other_slot: previous.index,
                            other_offset: po,
                            other_len: pl,
                        },
                    );
                }
            }
        }
        Ok(())
    }
}

/// Whether the slot's valid entries end in a commit record.
fn has_commit(slot: &ParsedSlot) -> bool {
    slot.entries.last().is_some_and(|e| e.kind == kind::COMMIT)
}

/// A validated view of one slot's contents.
pub(crate) struct SlotContents {
    /// `(target, len, offset of the old bytes)` per undo entry, in log order.
    pub undo: Vec<(u64, u64, u64)>,
    /// `(target, len, offset of the new bytes)` per redo entry, in log order.
    pub data: Vec<(u64, u64, u64)>,
    pub ops: Vec<Op>,
    pub ranges: Vec<(u64, u64)>,
    /// The data hash of the commit record, if the slot has a whole one.
    pub commit: Option<u64>,
}

/// Decodes and bounds-checks a slot. `Err` describes the first impossible entry.
/// Whether `start .. start + len` lies in `lo .. hi`, an empty range included: an entry that
/// writes nothing still names where, and recovery reserves and addresses up to it.
fn within(lo: u64, hi: u64, start: u64, len: u64) -> bool {
    start >= lo && start <= hi && len <= hi - start
}

pub(crate) fn contents(media: &Media, slot: &ParsedSlot) -> Result<SlotContents, LogCorruption> {
    let g = &media.geometry;
    let r = &media.region;
    let mut out = SlotContents {
        undo: Vec::new(),
        data: Vec::new(),
        ops: Vec::new(),
        ranges: Vec::new(),
        commit: None,
    };
    let read_ops = |entry: u64, payload: u64, count: u64, out: &mut Vec<Op>| {
        for i in 0..count {
            let at = payload + i * OP_SIZE;
            let op = Op::decode([r.read_u64(at), r.read_u64(at + 8)])
                .ok_or(LogCorruption::UnknownHeapOp { entry })?;
            let (target, len) = op.range();
            let ok = target % 8 == 0
                && len % 8 == 0
                && within(g.chunk_table_offset, g.heap_offset, target, len);
            if !ok {
                return Err(LogCorruption::HeapOpOutside { entry, target, len });
            }
            out.push(op);
        }
        Ok(())
    };
    let read_ranges = |entry: u64, payload: u64, count: u64, out: &mut Vec<(u64, u64)>| {
        for i in 0..count {
            let (offset, len) = (
                r.read_u64(payload + i * 16),
                r.read_u64(payload + i * 16 + 8),
            );
            if !within(g.heap_offset, g.heap_end(), offset, len) {
                return Err(LogCorruption::RangeOutside { entry, offset, len });
            }
            out.push((offset, len));
        }
        Ok(())
    };
    // An undo or redo payload: the target offset, then the bytes for it, as
    // `(target, len, offset of the bytes)`; `None` if too short to name a target.
    let read_targeted = |payload: u64, len: u64| {
        let n = len.checked_sub(8)?;
        Some((r.read_u64(payload), n, payload + 8))
    };
    let in_root_or_heap = |target: u64, n: u64| within(g.root_offset, g.heap_end(), target, n);
    for &Entry {
        kind: k,
        flags: f,
        aux,
        len,
        payload,
        ..
    } in &slot.entries
    {
        let entry = payload - ENTRY_HEADER;
        match k {
            kind::UNDO => {
                let bytes = read_targeted(payload, len)
                    .ok_or(LogCorruption::UndoWithoutTarget { entry })?;
                let (target, n, _) = bytes;
                if !in_root_or_heap(target, n) {
                    return Err(LogCorruption::UndoOutside {
                        entry,
                        target,
                        len: n,
                    });
                }
                out.undo.push(bytes);
            }
            kind::DATA => {
                let bytes = read_targeted(payload, len)
                    .ok_or(LogCorruption::RedoWithoutTarget { entry })?;
                let (target, n, _) = bytes;
                if !in_root_or_heap(target, n) {
                    return Err(LogCorruption::RedoOutside {
                        entry,
                        target,
                        len: n,
                    });
                }
                out.data.push(bytes);
            }
            kind::REDO => read_ops(entry, payload, len / OP_SIZE, &mut out.ops)?,
            kind::RANGES => read_ranges(entry, payload, len / 16, &mut out.ranges)?,
            kind::EXTEND => {}
            kind::COMMIT => {
                let mut fixed = 8;
                if f & flags::INLINE_WRITE != 0 {
                    // The transaction's one write, after every `DATA` entry (there are none).
                    let (target, n) = (r.read_u64(payload + 8), r.read_u64(payload + 16));
                    let padded = (n <= INLINE_WRITE_MAX as u64).then(|| n.div_ceil(8) * 8);
                    let Some(padded) = padded.filter(|&p| n != 0 && 24 + p <= len) else {
                        return Err(LogCorruption::ShortCommit { entry });
                    };
                    if !in_root_or_heap(target, n) {
                        return Err(LogCorruption::RedoOutside {
                            entry,
                            target,
                            len: n,
                        });
                    }
                    out.data.push((target, n, payload + 24));
                    fixed = 24 + padded;
                }
                let nranges = aux as u64;
                let records = len
                    .checked_sub(fixed + nranges * OP_SIZE)
                    .ok_or(LogCorruption::ShortCommit { entry })?;
                if records % OP_SIZE != 0 {
                    return Err(LogCorruption::CommitNotWhole { entry });
                }
                let nops = records / OP_SIZE;
                read_ops(entry, payload + fixed, nops, &mut out.ops)?;
                read_ranges(
                    entry,
                    payload + fixed + nops * OP_SIZE,
                    nranges,
                    &mut out.ranges,
                )?;
                out.commit = Some(r.read_u64(payload));
            }
            kind::RETIRED => {}
            _ => unreachable!("the reader accepts only known kinds"),
        }
    }
    Ok(out)
}

/// Hash of the current contents of every range a transaction wrote in place, in log order. The
/// writer computes the same over the same ranges at commit.
#[inline]
pub(crate) fn data_hash(
    media: &Media,
    undo: impl Iterator<Item = (u64, u64)>,
    ranges: &[(u64, u64)],
) -> u64 {
    let mut h = DATA_HASH_SEED;
    for (offset, len) in undo.chain(ranges.iter().copied()) {
        // SAFETY: hashing runs while nothing else writes the pool (the writer at commit, or
        // recovery at open).
        let bytes = unsafe { media.region.slice(offset, len) };
        h = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, h);
    }
    h
}

impl SlotContents {
    /// Whether the transaction committed: a whole commit record (reached only through every
    /// earlier entry, each whole) whose data hash matches the pool.
    pub(crate) fn committed(&self, media: &Media) -> bool {
        self.commit.is_some_and(|hash| {
            data_hash(
                media,
                self.undo.iter().map(|&(t, l, _)| (t, l)),
                &self.ranges,
            ) == hash
        })
    }
}

/// Applies heap ops in order and flushes what they touched.
pub(crate) fn apply_ops(media: &Media, ops: &[Op]) {
    apply_ops_then(media, ops, |target, len| media.domain.flush(target, len));
}

/// Applies heap ops in order, calling `written(target, len)` after each.
pub(crate) fn apply_ops_then(media: &Media, ops: &[Op], mut written: impl FnMut(u64, u64)) {
    let r = &media.region;
    for &op in ops {
        match op {
            Op::SetBits { target, mask } => r.write_u64(target, r.read_u64(target) | mask),
            Op::ClearBits { target, mask } => r.write_u64(target, r.read_u64(target) & !mask),
            Op::Write { target, value } => r.write_u64(target, value),
            Op::Zero { target, len } => r.zero(target, len),
        }
        let (target, len) = op.range();
        written(target, len);
    }
}

/// Writes a committed log's redo entries into place, in log order, and flushes them.
pub(crate) fn replay_data(media: &Media, data: &[(u64, u64, u64)]) {
    for &(target, len, new) in data {
        // SAFETY: only the pool's writer runs this, and the bytes are copied out before the
        // target (which a corrupt log could make overlap them) is written.
        let bytes = unsafe { media.region.slice(new, len) }.to_vec();
        media.write_flush(target, &bytes);
    }
}

/// Rolls undo entries back, newest first, and flushes what they restored.
pub(crate) fn roll_back(media: &Media, undo: &[(u64, u64, u64)]) {
    for &(target, len, old) in undo.iter().rev() {
        // SAFETY: only the pool's writer runs this, and the bytes are copied out before the
        // target (which a corrupt log could make overlap them) is written.
        let bytes = unsafe { media.region.slice(old, len) }.to_vec();
        media.write_flush(target, &bytes);
    }
}

/// Recovers the pool: replays or rolls back as described in [`crate::log`], fences, and returns
/// the report and the generation for the next log. The caller retires the logs.
///
/// Before writing anything, it calls `reserve(end)` with the end of the last byte it will
/// write, for the caller to reserve the disk blocks of `0 .. end` (a sparse file's holes would
/// turn a full disk into `SIGBUS`); an error there stops recovery before any write.
pub(crate) fn recover(
    media: &Media,
    reserve: impl FnOnce(u64) -> crate::Result<()>,
) -> Result<(RecoveryReport, u64), MetaFailure> {
    let state = read_state(media);
    state.validate(media).map_err(MetaFailure::Corrupt)?;
    let mut report = RecoveryReport::default();
    let Some(newest) = state.newest else {
        return Ok((report, state.next_gen));
    };
    let tail = newest.tail;
    let in_slot =
        |slot: u64| move |problem| MetaFailure::Corrupt(Corruption::Log { slot, problem });
    let newest = contents(media, &newest).map_err(in_slot(newest.index))?;
    let previous = match &state.previous {
        Some(previous) => Some(contents(media, previous).map_err(in_slot(previous.index))?),
        None => None,
    };
    let previous = previous.filter(|p| p.commit.is_some());
    let committed = newest.committed(media);
    // The end of everything written below: redo data and ops, or undo targets, and the torn
    // tail's header.
    let ops_end = |ops: &[Op]| {
        ops.iter()
            .map(|op| {
                let (target, len) = op.range();
                target + len
            })
            .max()
    };
    let ranges_end =
        |ranges: &[(u64, u64, u64)]| ranges.iter().map(|&(target, len, _)| target + len).max();
    let end = [
        previous.as_ref().and_then(|p| ops_end(&p.ops)),
        previous.as_ref().and_then(|p| ranges_end(&p.data)),
        if committed {
            ops_end(&newest.ops).max(ranges_end(&newest.data))
        } else {
            ranges_end(&newest.undo)
        },
        tail.filter(|t| t.block_end - t.pos >= ENTRY_HEADER)
            .map(|t| t.pos + ENTRY_HEADER),
    ]
    .into_iter()
    .flatten()
    .max()
    .unwrap_or(0);
    reserve(end).map_err(MetaFailure::Space)?;
    if let Some(previous) = &previous {
        replay_data(media, &previous.data);
        report.redo_applied += previous.data.len() as u64;
        apply_ops(media, &previous.ops);
        report.ops_replayed += previous.ops.len() as u64;
    }
    if committed {
        replay_data(media, &newest.data);
        report.redo_applied += newest.data.len() as u64;
        apply_ops(media, &newest.ops);
        report.ops_replayed += newest.ops.len() as u64;
    } else {
        roll_back(media, &newest.undo);
        report.undo_applied = newest.undo.len() as u64;
        report.rolled_back = true;
    }
    // A crash may have torn the entry after the valid ones. Mark the log's end explicitly, so
    // that a later check can tell damage (an entry of this generation failing its checksum)
    // from the torn tail of a transaction recovery has dealt with.
    if let Some(tail) = tail {
        if tail.block_end - tail.pos >= ENTRY_HEADER {
            media.region.zero(tail.pos, ENTRY_HEADER);
            media.domain.flush(tail.pos, ENTRY_HEADER);
        }
    }
    media.domain.fence();
    Ok((report, state.next_gen))
}

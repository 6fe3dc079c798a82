//! Appending entries to the log of the open transaction.

use crate::error::Result;
use crate::heap::Heap;
use crate::layout::log::{
    entry_seed, entry_size, flags, kind, kind_word, EpochKey, GenKey, Op, ENTRY_ALIGN,
    ENTRY_HEADER, INLINE_WRITE_MAX, LOG_SLOT_SIZE, OP_SIZE,
};
use crate::layout::Geometry;
use crate::media::Media;

use super::payload::{Head, Payload};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Room kept at the end of every block for the `EXTEND` entry that may follow.
const EXTEND_RESERVE: u64 = entry_size(16);
/// Smallest and largest log extension blocks asked for (a nearly full heap may lend less, down
/// to one chunk: every entry's smallest useful piece fits in one).
const MIN_EXTENSION: u64 = 64 * 1024;
const MAX_EXTENSION: u64 = 4 * 1024 * 1024;
/// Smallest useful piece of a redo entry split across blocks.
const MIN_DATA_PIECE: u64 = 256;

struct OpenLog {
    gen: u64,
    /// The key of this generation's entries.
    key: GenKey,
    pos: u64,
    end: u64,
    /// Start of the bytes written but not yet flushed.
    unflushed: u64,
    /// Every entry written so far has been fenced: the next one is flagged `FENCED`.
    fenced: bool,
    /// Whether any entry was written.
    written: bool,
}

/// Writes the log of one transaction at a time, alternating between the two slots.
pub(crate) struct LogWriter {
    next_gen: u64,
    open: Option<OpenLog>,
    /// Heap space lent to each slot for entries beyond its fixed area.
    extensions: [Vec<(u64, u64)>; 2],
    /// Entries a finished log left unflushed (it ended without committing): made durable before
    /// the next log starts, so the newest log on the media is always the newest one written.
    leftover: Option<(u64, u64)>,
    /// The key of the epoch the last log's generation fell in: the next logs' keys, until the
    /// epoch ends.
    epoch: Option<EpochKey>,
}

impl LogWriter {
    /// A writer whose next transaction gets generation `next_gen`.
    pub(crate) fn new(next_gen: u64) -> LogWriter {
        LogWriter {
            next_gen,
            open: None,
            extensions: [Vec::new(), Vec::new()],
            leftover: None,
            epoch: None,
        }
    }

    /// Whether the open transaction has written any entry.
    pub(crate) fn is_started(&self) -> bool {
        self.open.is_some()
    }

    /// The slot the open transaction writes, if it has written anything.
    pub(crate) fn current_slot(&self) -> Option<usize> {
        // A log that wrote nothing left the slot's older log, and the operations recovery may
        // replay from it, in place.
        self.open
            .as_ref()
            .filter(|log| log.written)
            .map(|log| (log.gen % 2) as usize)
    }

    #[inline]
    fn begin(&mut self, media: &Media, heap: &Heap) -> &mut OpenLog {
        if self.open.is_none() {
            self.start(media, heap);
        }
        self.open.as_mut().expect("just opened")
    }

    /// Opens the next transaction's log.
    fn start(&mut self, media: &Media, heap: &Heap) {
        if self.leftover.is_some() {
            self.make_leftover_durable(media);
        }
        let gen = self.next_gen;
        let slot = gen % 2;
        // The slot last held transaction gen - 2, which no recovery needs any more.
        if !self.extensions[slot as usize].is_empty() {
            self.release_extensions(slot as usize, heap);
        }
        let key = match self.epoch {
            Some(epoch) if epoch.holds(gen) => epoch.generation(gen),
            _ => self.enter_epoch(media, gen),
        };
        let start = Geometry::log_slot_offset(slot);
        self.open = Some(OpenLog {
            gen,
            key,
            pos: start,
            end: start + LOG_SLOT_SIZE,
            unflushed: start,
            fenced: true,
            written: false,
        });
    }

    /// Gives back the heap space slot `slot`'s log was lent (out of line: most logs fit their
    /// slot, and the loop would cost every transaction's start its registers).
    #[cold]
    #[inline(never)]
    fn release_extensions(&mut self, slot: usize, heap: &Heap) {
        for (offset, len) in self.extensions[slot].drain(..) {
            heap.release_log_space(offset, len);
        }
    }

    /// The key of generation `gen`, which starts an epoch (or is the first since open).
    #[cold]
    #[inline(never)]
    fn enter_epoch(&mut self, media: &Media, gen: u64) -> GenKey {
        let epoch = media.log_key.epoch(gen);
        self.epoch = Some(epoch);
        epoch.generation(gen)
    }

    /// Makes what the last log left unflushed durable. Until then, the log being started could
    /// overwrite the other slot's older log while a crash still showed that one as the newest.
    #[cold]
    #[inline(never)]
    fn make_leftover_durable(&mut self, media: &Media) {
        if let Some((offset, len)) = self.leftover.take() {
            if !media.domain.streams_log() {
                media.domain.flush(offset, len);
            }
            media.domain.fence();
        }
    }

    /// Payload bytes that fit in the current block before an `EXTEND` is needed.
    fn room(&mut self, media: &Media, heap: &Heap) -> u64 {
        let log = self.begin(media, heap);
        (log.end - log.pos).saturating_sub(ENTRY_HEADER + EXTEND_RESERVE)
    }

    /// Makes room for a payload of at least `want` bytes, continuing the log in heap space if the
    /// current block is too full.
    fn ensure_room(&mut self, media: &Media, heap: &Heap, want: u64) -> Result<()> {
        if self.room(media, heap) >= want {
            return Ok(());
        }
        let size = (entry_size(want) + EXTEND_RESERVE)
            .clamp(MIN_EXTENSION, MAX_EXTENSION.max(want + 4096));
        let (offset, len) = heap.reserve_log_space(size)?;
        let slot = (self.open.as_ref().expect("open").gen % 2) as usize;
        self.extensions[slot].push((offset, len));
        let mut payload = [0u8; 16];
        payload[..8].copy_from_slice(&offset.to_le_bytes());
        payload[8..].copy_from_slice(&len.to_le_bytes());
        self.write_entry(media, kind::EXTEND, &[&payload]);
        self.flush_written(media);
        let log = self.open.as_mut().expect("open");
        log.pos = offset;
        log.end = offset + len;
        log.unflushed = offset;
        Ok(())
    }

    /// Writes one entry at the current position (the caller has ensured room).
    fn write_entry(&mut self, media: &Media, k: u32, parts: &[&[u8]]) {
        self.write_entry_of(media, k, 0, Content::Parts(parts))
    }

    /// Writes one entry holding `content` (the caller has ensured room): stored and flushed
    /// later, or streamed, as the domain says. Inlined, so that each caller's `match` on the
    /// content folds away.
    #[inline(always)]
    fn write_entry_of(&mut self, media: &Media, k: u32, aux: u16, content: Content<'_>) {
        let log = self.open.as_mut().expect("open");
        let len = content.len();
        let entry_flags = if log.fenced { flags::FENCED } else { 0 } | content.flags();
        log.fenced = false;
        log.written = true;
        let kind_word = kind_word(k, entry_flags, aux);
        let seed = entry_seed(&log.key, log.pos, kind_word, len as u32);
        let word0 = kind_word as u64 | len << 32;
        if media.domain.streams_log() {
            let mut head = Head::new();
            let mut payload = Payload::new(media, log.pos, seed);
            content.stream(&mut payload, &mut head);
            debug_assert_eq!(payload.len(), len, "the payload is as long as declared");
            payload.finish(&mut head, word0, log.gen);
        } else {
            let payload = log.pos + ENTRY_HEADER;
            content.store(media, payload);
            // SAFETY: this writer is the pool's only writer; the bytes were just written.
            let bytes = unsafe { media.region.slice(payload, len) };
            let checksum = xxh3_64_with_seed(bytes, seed);
            media.region.write_u64(log.pos, word0);
            media.region.write_u64(log.pos + 8, log.gen);
            media.region.write_u64(log.pos + 16, checksum);
        }
        log.pos += entry_size(len);
    }

    /// Flushes everything written since the last flush; the caller fences before the next entry
    /// is written (which is flagged as following a fence).
    pub(crate) fn flush(&mut self, media: &Media) {
        self.flush_written(media);
        if let Some(log) = self.open.as_mut() {
            log.fenced = true;
        }
    }

    /// Flushes everything written since the last flush, with no fence to follow.
    fn flush_written(&mut self, media: &Media) {
        if let Some(log) = self.open.as_mut() {
            if log.pos > log.unflushed {
                // Streamed lines need no flush: the next fence makes them durable.
                if !media.domain.streams_log() {
                    media.domain.flush(log.unflushed, log.pos - log.unflushed);
                }
                log.unflushed = log.pos;
            }
        }
    }

    /// Appends `bytes`, the new contents of `[target, target + bytes.len())`, as one or more
    /// `DATA` entries, and calls `each(target, len)` for each piece, in log order. The caller
    /// writes the commit record after them; one fence makes all of it durable.
    pub(crate) fn data(
        &mut self,
        media: &Media,
        heap: &Heap,
        mut target: u64,
        mut bytes: &[u8],
        mut each: impl FnMut(u64, u64),
    ) -> Result<()> {
        while !bytes.is_empty() {
            let len = bytes.len() as u64;
            let room = self.room(media, heap);
            if room < 8 + len.min(MIN_DATA_PIECE) {
                self.ensure_room(media, heap, 8 + len.min(MAX_EXTENSION - 4096))?;
                continue;
            }
            let piece = len.min(room - 8);
            let (head, rest) = bytes.split_at(piece as usize);
            self.write_entry(media, kind::DATA, &[&target.to_le_bytes(), head]);
            each(target, piece);
            target += piece;
            bytes = rest;
        }
        Ok(())
    }

    /// Appends the commit record: `data_hash`, `ops` and `ranges`, and `write`, the new bytes
    /// of the transaction's one write not yet logged, if it has one. The write goes inside the
    /// record where the whole record still fits one cache line, else in a `DATA` entry before
    /// it. Ops and ranges that do not fit go first in `REDO` and `RANGES` entries. Flushes the
    /// log; the caller fences.
    pub(crate) fn commit(
        &mut self,
        media: &Media,
        heap: &Heap,
        data_hash: u64,
        ops: &[Op],
        ranges: &[(u64, u64)],
        write: Option<(u64, &[u8])>,
    ) -> Result<()> {
        let (mut ops, mut ranges) = (ops, ranges);
        let mut write = write;
        if let Some((target, bytes)) = write {
            let record = Content::Commit {
                data_hash,
                ops,
                ranges,
                write,
            }
            .len();
            let fits = bytes.len() <= INLINE_WRITE_MAX
                && entry_size(record) <= ENTRY_ALIGN
                && self.room(media, heap) >= record;
            if !fits {
                self.data(media, heap, target, bytes, |_, _| {})?;
                write = None;
            }
        }
        let inline = Content::Commit {
            data_hash,
            ops,
            ranges,
            write,
        }
        .len();
        if self.room(media, heap) < inline || ranges.len() > u16::MAX as usize {
            // Too large for one entry here: spill into REDO and RANGES entries first.
            while !ops.is_empty() {
                let n = self.spill_room(media, heap, ops.len())?;
                let (head, tail) = ops.split_at(n);
                self.write_entry_of(media, kind::REDO, 0, Content::Ops(head));
                ops = tail;
            }
            while !ranges.is_empty() {
                let n = self.spill_room(media, heap, ranges.len())?;
                let (head, tail) = ranges.split_at(n);
                self.write_entry_of(media, kind::RANGES, 0, Content::Ranges(head));
                ranges = tail;
            }
            self.ensure_room(media, heap, 8)?;
        }
        self.begin(media, heap);
        let commit = Content::Commit {
            data_hash,
            ops,
            ranges,
            write,
        };
        self.write_entry_of(media, kind::COMMIT, ranges.len() as u16, commit);
        self.flush(media);
        Ok(())
    }

    /// How many of `want` 16-byte records fit in one entry here, extending the log if none do.
    fn spill_room(&mut self, media: &Media, heap: &Heap, want: usize) -> Result<usize> {
        if self.room(media, heap) < 4 * OP_SIZE {
            self.ensure_room(media, heap, (want as u64 * OP_SIZE).min(MAX_EXTENSION / 2))?;
        }
        Ok(want.min((self.room(media, heap) / OP_SIZE) as usize))
    }

    /// Offset where the next transaction's log will start.
    pub(crate) fn next_slot_offset(&self) -> u64 {
        let next = self.open.as_ref().map_or(self.next_gen, |log| log.gen + 1);
        Geometry::log_slot_offset(next % 2)
    }

    /// Ends the open transaction's log; the next one uses the other slot. A log that wrote
    /// nothing leaves its slot's older log in place, so it gives its generation to the next one:
    /// otherwise that one would overwrite the log a crash shows as the newest.
    pub(crate) fn finish(&mut self) {
        if let Some(log) = self.open.take() {
            if log.written {
                self.next_gen = log.gen + 1;
            }
            if log.pos > log.unflushed {
                self.leftover = Some((log.unflushed, log.pos - log.unflushed));
            }
        }
    }

    /// Writes a `RETIRED` entry as the newest generation and fences, so no recovery ever looks at
    /// the older logs again. The caller must have fenced everything they describe.
    pub(crate) fn retire(&mut self, media: &Media, heap: &Heap) {
        debug_assert!(self.open.is_none());
        self.begin(media, heap);
        self.write_entry(media, kind::RETIRED, &[]);
        self.flush(media);
        media.domain.fence();
        self.finish();
        // No recovery reads either slot any more, so no log needs the heap space it was lent.
        for extensions in &mut self.extensions {
            for (offset, len) in extensions.drain(..) {
                heap.release_log_space(offset, len);
            }
        }
    }
}

/// What an entry holds, written by [`LogWriter::write_entry_of`] either way.
enum Content<'a> {
    /// Byte strings, one after the other.
    Parts(&'a [&'a [u8]]),
    /// A commit record: the data hash, the write held inline (if any), then the heap ops, then
    /// the new-object ranges.
    Commit {
        data_hash: u64,
        ops: &'a [Op],
        ranges: &'a [(u64, u64)],
        write: Option<(u64, &'a [u8])>,
    },
    /// Heap ops that did not fit the commit record.
    Ops(&'a [Op]),
    /// New-object ranges that did not fit the commit record.
    Ranges(&'a [(u64, u64)]),
}

/// Bytes a write held in a commit record takes: its target, its length, and its bytes padded
/// to whole words.
fn inline_write_len(write: Option<(u64, &[u8])>) -> u64 {
    write.map_or(0, |(_, bytes)| 16 + (bytes.len() as u64).div_ceil(8) * 8)
}

impl Content<'_> {
    fn len(&self) -> u64 {
        match self {
            Content::Parts(parts) => parts.iter().map(|p| p.len() as u64).sum(),
            Content::Commit {
                ops, ranges, write, ..
            } => 8 + inline_write_len(*write) + (ops.len() + ranges.len()) as u64 * OP_SIZE,
            Content::Ops(ops) => ops.len() as u64 * OP_SIZE,
            Content::Ranges(ranges) => ranges.len() as u64 * OP_SIZE,
        }
    }

    /// The flags the entry's header gets from what it holds.
    fn flags(&self) -> u32 {
        match self {
            Content::Commit { write: Some(_), .. } => flags::INLINE_WRITE,
            _ => 0,
        }
    }

    /// Stores the payload at pool offset `at`.
    #[inline]
    fn store(&self, media: &Media, mut at: u64) {
        let r = &media.region;
        match *self {
            Content::Parts(parts) => {
                for part in parts {
                    r.write(at, part);
                    at += part.len() as u64;
                }
            }
            Content::Commit {
                data_hash,
                ops,
                ranges,
                write,
            } => {
                r.write_u64(at, data_hash);
                if let Some((target, bytes)) = write {
                    r.write_u64(at + 8, target);
                    r.write_u64(at + 16, bytes.len() as u64);
                    // Zeroed first: the padding after the bytes is part of the checksum.
                    let padded = inline_write_len(write) - 16;
                    for word in 0..padded / 8 {
                        r.write_u64(at + 24 + word * 8, 0);
                    }
                    r.write(at + 24, bytes);
                }
                let at = at + 8 + inline_write_len(write);
                store_ops(media, at, ops);
                store_ranges(media, at + ops.len() as u64 * OP_SIZE, ranges);
            }
            Content::Ops(ops) => store_ops(media, at, ops),
            Content::Ranges(ranges) => store_ranges(media, at, ranges),
        }
    }

    /// Puts the payload into a streamed entry.
    fn stream(&self, p: &mut Payload<'_>, h: &mut Head) {
        let words =
            |p: &mut Payload<'_>, h: &mut Head, pairs: &mut dyn Iterator<Item = [u64; 2]>| {
                for [a, b] in pairs {
                    p.put_u64(h, a);
                    p.put_u64(h, b);
                }
            };
        match *self {
            Content::Parts(parts) => parts.iter().for_each(|part| p.put(h, part)),
            Content::Commit {
                data_hash,
                ops,
                ranges,
                write,
            } => {
                p.put_u64(h, data_hash);
                if let Some((target, bytes)) = write {
                    p.put_u64(h, target);
                    p.put_u64(h, bytes.len() as u64);
                    p.put(h, bytes);
                    let pad = (inline_write_len(write) - 16) as usize - bytes.len();
                    p.put(h, &[0u8; 8][..pad]);
                }
                words(p, h, &mut ops.iter().map(|op| op.encode()));
                words(p, h, &mut ranges.iter().map(|&(o, l)| [o, l]));
            }
            Content::Ops(ops) => words(p, h, &mut ops.iter().map(|op| op.encode())),
            Content::Ranges(ranges) => words(p, h, &mut ranges.iter().map(|&(o, l)| [o, l])),
        }
    }
}

fn store_ops(media: &Media, at: u64, ops: &[Op]) {
    for (i, op) in ops.iter().enumerate() {
        let [a, b] = op.encode();
        media.region.write_u64(at + i as u64 * OP_SIZE, a);
        media.region.write_u64(at + i as u64 * OP_SIZE + 8, b);
    }
}

fn store_ranges(media: &Media, at: u64, ranges: &[(u64, u64)]) {
    for (i, &(offset, len)) in ranges.iter().enumerate() {
        media.region.write_u64(at + i as u64 * OP_SIZE, offset);
        media.region.write_u64(at + i as u64 * OP_SIZE + 8, len);
    }
}

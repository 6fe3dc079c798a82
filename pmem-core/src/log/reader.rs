//! Parsing a log slot: the valid prefix of entries of one generation, and what proves the log
//! damaged rather than torn.

use crate::error::LogCorruption;
use std::collections::BTreeMap;

use crate::layout::heap::CHUNK_SIZE;
use crate::layout::log::{
    entry_checksum, entry_size, flags, kind, kind_word, GenKey, LogKey, ENTRY_ALIGN, ENTRY_HEADER,
    LOG_SLOT_SIZE,
};
use crate::layout::Geometry;
use crate::region::Region;

/// One valid entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub kind: u32,
    /// The header's flags.
    pub flags: u32,
    /// The header's auxiliary value (a commit record's range count).
    pub aux: u16,
    /// Payload length in bytes.
    pub len: u64,
    /// Pool offset of the payload.
    pub payload: u64,
}

/// The valid prefix of a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedSlot {
    pub index: u64,
    pub gen: u64,
    pub entries: Vec<Entry>,
    /// Where parsing stopped at an entry that is not valid, if it did.
    pub tail: Option<Tail>,
    /// The heap blocks the log continues in, in chain order: `(offset, len)`.
    pub blocks: Vec<(u64, u64)>,
    /// Why the slot's log cannot be trusted as written, if it cannot.
    pub problem: Option<LogCorruption>,
}

/// The position after a slot's valid entries, when an invalid entry header is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tail {
    /// Offset of the invalid entry header.
    pub pos: u64,
    /// End of the block it is in.
    pub block_end: u64,
}

impl ParsedSlot {
    pub(crate) fn is_retired(&self) -> bool {
        self.entries[0].kind == kind::RETIRED
    }
}

/// The header fields of the entry at `pos` in a block ending at `end`, if they could be an entry
/// of generation `gen` there: `(kind word, len)`. Says nothing about the payload or the checksum.
fn plausible_header(region: &Region, gen: u64, pos: u64, end: u64) -> Option<(u32, u64)> {
    let word0 = region.read_u64(pos);
    let (kind_word, len) = (word0 as u32, word0 >> 32);
    let (k, f) = (kind_word & 0xff, kind_word >> 8 & 0xff);
    let plausible = (kind::UNDO..=kind::LAST).contains(&k)
        && f & !flags::ALL == 0
        && (f & flags::INLINE_WRITE == 0 || k == kind::COMMIT)
        && entry_size(len) <= end - pos
        && region.read_u64(pos + 8) == gen;
    plausible.then_some((kind_word, len))
}

/// Whether the entry at `pos`, whose header [`plausible_header`] accepted, has the checksum
/// `key` gives its header and payload.
fn checksum_matches(region: &Region, key: &GenKey, pos: u64, kind_word: u32, len: u64) -> bool {
    // SAFETY: recovery and the checker parse only while nothing writes the pool.
    let bytes = unsafe { region.slice(pos + ENTRY_HEADER, len) };
    entry_checksum(key, pos, kind_word, len as u32, bytes) == region.read_u64(pos + 16)
}

/// The header of the entry at `pos` in a block ending at `end`, if it is a valid entry of the
/// generation `key` was made for: `(kind, flags, aux, len)`.
fn valid_entry(
    region: &Region,
    key: &GenKey,
    gen: u64,
    pos: u64,
    end: u64,
) -> Option<(u32, u32, u16, u64)> {
    let (kind_word, len) = plausible_header(region, gen, pos, end)?;
    checksum_matches(region, key, pos, kind_word, len).then_some((
        kind_word & 0xff,
        kind_word >> 8 & 0xff,
        (kind_word >> 16) as u16,
        len,
    ))
}

/// Looks past the invalid entry at `pos` for proof that it was durable: a valid entry of the same
/// log, later in the same block, written after a fence. Entries of a block are contiguous, so an
/// entry later in the block means one was written at `pos` before it; the flag says a fence
/// came between them. Without such proof the invalid entry is a torn tail: it was still being
/// written when the power went, and nothing the log protects depended on it.
///
/// The search follows the chain of entries from `pos` by each entry's recorded length (damage
/// to a payload byte leaves the length intact) rather than trying every line of the block: a
/// file chooses the block (any run of whole heap chunks) and could put a plausible header of
/// the current generation, with a length to the block's end, on every line, making a line by
/// line search hash a quadratic number of bytes. Along the chain the entries are disjoint and
/// only those flagged `FENCED` are hashed, so the work is at most one pass over the block.
///
/// Damage to the invalid entry's own header (its kind, length or generation word, or a length
/// that no longer lands on the next entry) breaks the chain: then every line of the block is
/// tried, within a budget of twice the block's bytes hashed ([`scan_lines`]). What this cannot
/// see: damage followed by no fenced entry in the same block (the next fenced entry may be in
/// the block an `EXTEND` continues in). Bytes the chain lands on that a writer did not put
/// there (stale entries, or application bytes in a reused heap block that spell a header of
/// the current generation, which is predictable) cannot prove anything: a proof is an entry
/// keyed by the pool's secret for this position and generation, which only the writer makes,
/// and it makes one flagged `FENCED` only after every earlier entry of its log is durable.
fn find_damage_proof(region: &Region, key: &GenKey, gen: u64, pos: u64, end: u64) -> Option<u64> {
    follow_chain(region, key, gen, pos, end)
        .or_else(|| scan_lines(region, key, gen, pos + ENTRY_ALIGN, end, 2 * (end - pos)))
}

/// The chain search of [`find_damage_proof`]: from the invalid entry at `pos`, by each entry's
/// recorded length.
fn follow_chain(region: &Region, key: &GenKey, gen: u64, pos: u64, end: u64) -> Option<u64> {
    let (_, len) = plausible_header(region, gen, pos, end)?;
    let mut at = pos + entry_size(len);
    while end - at >= ENTRY_HEADER {
        let (kind_word, len) = plausible_header(region, gen, at, end)?;
        if kind_word >> 8 & flags::FENCED != 0 && checksum_matches(region, key, at, kind_word, len)
        {
            return Some(at);
        }
        at += entry_size(len);
    }
    None
}

/// Tries every line from `from` to `end` for a valid `FENCED` entry of generation `gen`, hashing
/// at most `budget` payload bytes: the fallback of [`find_damage_proof`] for damage to an entry's
/// own header, where the chain cannot be followed. Lines a file or stored bytes crafted can make
/// the search hash more than the budget, which only ends it early (the damage then reads as a
/// torn tail, as it did without the fallback); they can never make a proof.
fn scan_lines(
    region: &Region,
    key: &GenKey,
    gen: u64,
    from: u64,
    end: u64,
    mut budget: u64,
) -> Option<u64> {
    let mut at = from;
    while end.saturating_sub(at) >= ENTRY_HEADER {
        if let Some((kind_word, len)) = plausible_header(region, gen, at, end) {
            if kind_word >> 8 & flags::FENCED != 0 {
                if len > budget {
                    return None;
                }
                budget -= len;
                if checksum_matches(region, key, at, kind_word, len) {
                    return Some(at);
                }
            }
        }
        at += ENTRY_ALIGN;
    }
    None
}

/// Proof that log slot `index`, whose first entry is not valid, holds a log of generation `gen`
/// whose first entry was durable: a valid `FENCED` entry of that generation later in the slot's
/// fixed area. `gen` is the generation the writer uses next, the only one that can be new in
/// this slot: a torn first entry of that log (or a torn `RETIRED` entry over an older log)
/// leaves no such entry, since the writer flags an entry `FENCED` only once every earlier
/// entry of its log is durable, and stale entries of the slot are of older generations.
pub(crate) fn first_entry_damage_proof(
    region: &Region,
    log_key: &LogKey,
    index: u64,
    gen: u64,
) -> Option<u64> {
    let start = Geometry::log_slot_offset(index);
    let end = start + LOG_SLOT_SIZE;
    scan_lines(
        region,
        &log_key.generation(gen),
        gen,
        start + ENTRY_ALIGN,
        end,
        2 * LOG_SLOT_SIZE,
    )
}

/// Disjoint blocks `(offset, len)` of the pool, found by offset in logarithmic time.
#[derive(Debug, Default)]
pub(crate) struct BlockSet {
    /// Start -> length.
    blocks: BTreeMap<u64, u64>,
}

impl BlockSet {
    /// Adds a block that overlaps none of the set's.
    pub(crate) fn insert(&mut self, offset: u64, len: u64) {
        self.blocks.insert(offset, len);
    }

    /// A block of the set that overlaps `[offset, offset + len)`, if any.
    pub(crate) fn overlapping(&self, offset: u64, len: u64) -> Option<(u64, u64)> {
        let end = offset.saturating_add(len);
        // The set's blocks are disjoint, so only the last one starting before `end` can reach
        // into the range.
        let (&o, &l) = self.blocks.range(..end).next_back()?;
        (o.saturating_add(l) > offset && len > 0).then_some((o, l))
    }
}

/// Whether `(offset, len)` is a block the writer could have reserved: whole chunks of the heap.
fn is_heap_block(geometry: &Geometry, offset: u64, len: u64) -> bool {
    offset >= geometry.heap_offset
        && (offset - geometry.heap_offset) % CHUNK_SIZE == 0
        && len > 0
        && len % CHUNK_SIZE == 0
        && offset <= geometry.heap_end()
        && len <= geometry.heap_end() - offset
}

/// Parses slot `index`. `None` if even its first entry is invalid (a fresh or torn slot).
pub(crate) fn parse(
    region: &Region,
    geometry: &Geometry,
    log_key: &LogKey,
    index: u64,
) -> Option<ParsedSlot> {
    let mut pos = Geometry::log_slot_offset(index);
    let mut end = pos + LOG_SLOT_SIZE;
    // The last generation is never written: the one after it could not be numbered.
    let gen = region.read_u64(pos + 8);
    if gen == u64::MAX {
        return None;
    }
    let key = log_key.generation(gen);
    // The chain's blocks by offset: a file may chain one block per chunk, so checking each new
    // one against every earlier one would take time quadratic in the heap.
    let mut chain = BlockSet::default();
    let mut slot = ParsedSlot {
        index,
        gen,
        entries: Vec::new(),
        tail: None,
        blocks: Vec::new(),
        problem: None,
    };
    loop {
        if end - pos < ENTRY_HEADER {
            break;
        }
        let Some((k, f, aux, len)) = valid_entry(region, &key, gen, pos, end) else {
            if slot.entries.is_empty() {
                return None;
            }
            slot.tail = Some(Tail {
                pos,
                block_end: end,
            });
            slot.problem = find_damage_proof(region, &key, gen, pos, end)
                .map(|evidence| LogCorruption::Damaged { pos, evidence });
            break;
        };
        let payload = pos + ENTRY_HEADER;
        slot.entries.push(Entry {
            kind: k,
            flags: f,
            aux,
            len,
            payload,
        });
        match k {
            kind::EXTEND => {
                if len != 16 {
                    slot.problem = Some(LogCorruption::BadExtendLength { pos, len });
                    break;
                }
                // A hostile chain could loop; the heap cannot hold more blocks than chunks.
                if slot.blocks.len() as u64 >= geometry.chunk_count {
                    slot.problem = Some(LogCorruption::ChainTooLong { pos });
                    break;
                }
                let offset = region.read_u64(payload);
                let block_len = region.read_u64(payload + 8);
                if !is_heap_block(geometry, offset, block_len)
                    || chain.overlapping(offset, block_len).is_some()
                {
                    slot.problem = Some(LogCorruption::BadExtension {
                        pos,
                        offset,
                        len: block_len,
                    });
                    break;
                }
                slot.blocks.push((offset, block_len));
                chain.insert(offset, block_len);
                pos = offset;
                end = offset + block_len;
            }
            kind::COMMIT | kind::RETIRED => break,
            _ => pos += entry_size(len),
        }
    }
    Some(slot)
}

/// Whether slot `index`, where [`parse`] found no valid first entry, holds a damaged first entry
/// of the log of generation `gen`, rather than that entry with a `RETIRED` entry of generation
/// `gen + 2` (the only entry written over a log while the log after it is uncommitted) torn over
/// its header. Generations are written in turn, so the slot held `gen`'s first entry; stores of
/// 8 aligned bytes are failure-atomic, so a torn `RETIRED` entry leaves each header word either
/// old or new. A generation word that is neither, or the old one with neither a new kind word
/// nor a new checksum, is damage.
pub(crate) fn first_entry_damaged(region: &Region, log_key: &LogKey, index: u64, gen: u64) -> bool {
    let pos = Geometry::log_slot_offset(index);
    let Some(retired_gen) = gen.checked_add(2) else {
        return false;
    };
    let word_gen = region.read_u64(pos + 8);
    if word_gen == retired_gen {
        return false;
    }
    if word_gen != gen {
        return true;
    }
    let retired = kind_word(kind::RETIRED, flags::FENCED, 0);
    let checksum = entry_checksum(&log_key.generation(retired_gen), pos, retired, 0, &[]);
    region.read_u64(pos) != u64::from(retired) && region.read_u64(pos + 16) != checksum
}

/// Whether slot `index` starts with anything but zeros: where [`parse`] found no valid first
/// entry, that entry is damaged rather than never written.
pub(crate) fn starts_nonzero(region: &Region, index: u64) -> bool {
    let pos = Geometry::log_slot_offset(index);
    (0..3).any(|i| region.read_u64(pos + 8 * i) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::log::ENTRY_ALIGN;
    use crate::{Persistent, Pool};

    #[derive(Persistent)]
    #[repr(C)]
    struct Root {
        x: u64,
    }

    /// Parses slot 0 of a pool whose log continues, by one validly keyed `EXTEND` entry, in a
    /// heap block of `block` bytes that starts with a torn entry and has, on every later line, a
    /// header of the log's generation whose payload runs to the block's end (checksum wrong):
    /// what a file can hold, since it holds the key.
    fn parse_hostile_block(block: u64) -> ParsedSlot {
        let pool = Pool::<Root>::builder()
            .create_simulated(block + (16 << 20))
            .expect("create");
        let media = &pool.shared().media;
        let (r, g) = (&media.region, &media.geometry);
        let gen = 1000u64;
        let key = media.log_key.generation(gen);
        let at = Geometry::log_slot_offset(0);
        let b = g.heap_offset;
        let mut payload = [0u8; 16];
        payload[..8].copy_from_slice(&b.to_le_bytes());
        payload[8..].copy_from_slice(&block.to_le_bytes());
        let kw = kind_word(kind::EXTEND, flags::FENCED, 0);
        r.write(at + ENTRY_HEADER, &payload);
        r.write_u64(at, kw as u64 | 16 << 32);
        r.write_u64(at + 8, gen);
        r.write_u64(at + 16, entry_checksum(&key, at, kw, 16, &payload));
        r.zero(b, ENTRY_ALIGN);
        let mut p = b + ENTRY_ALIGN;
        while p + ENTRY_ALIGN <= b + block {
            let len = b + block - p - ENTRY_HEADER;
            r.write_u64(
                p,
                kind_word(kind::UNDO, flags::FENCED, 0) as u64 | len << 32,
            );
            r.write_u64(p + 8, gen);
            r.write_u64(p + 16, 0xdead);
            p += ENTRY_ALIGN;
        }
        let slot = parse(r, g, &media.log_key, 0).expect("slot 0 parses");
        drop(pool);
        slot
    }

    #[test]
    fn a_block_set_finds_any_overlap() {
        let mut set = BlockSet::default();
        for (o, l) in [(100, 10), (200, 50), (300, 1)] {
            assert_eq!(set.overlapping(o, l), None);
            set.insert(o, l);
        }
        assert_eq!(set.overlapping(110, 90), None, "between blocks");
        assert_eq!(set.overlapping(0, 100), None, "just before");
        assert_eq!(set.overlapping(109, 1), Some((100, 10)), "last byte");
        assert_eq!(set.overlapping(0, 101), Some((100, 10)), "first byte");
        assert_eq!(
            set.overlapping(150, 1000),
            Some((300, 1)),
            "spanning several"
        );
        assert_eq!(set.overlapping(220, 5), Some((200, 50)), "inside");
        assert_eq!(set.overlapping(u64::MAX - 5, 10), None, "saturating end");
        assert_eq!(set.overlapping(205, 0), None, "empty range");
    }

    #[test]
    fn damage_search_in_a_hostile_block_is_linear() {
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(parse_hostile_block(16 << 20));
        });
        // A line by line search hashes about block² / 128 bytes here (2 TiB: minutes even at
        // 4 MiB); one pass over the block takes milliseconds. The timeout only tells a hang
        // from a slow machine.
        let slot = finished
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("parsing a 16 MiB hostile log block finishes");
        assert!(slot.tail.is_some());
        assert_eq!(slot.problem, None, "no entry of the block is validly keyed");
    }
}

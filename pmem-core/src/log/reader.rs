//! Parsing a log slot: the valid prefix of entries of one generation, and what proves the log
//! damaged rather than torn.

use crate::layout::heap::CHUNK_SIZE;
use crate::layout::log::{
    entry_checksum, entry_size, flags, kind, GenKey, LogKey, ENTRY_ALIGN, ENTRY_HEADER,
    LOG_SLOT_SIZE,
};
use crate::layout::Geometry;
use crate::region::Region;

/// One valid entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub kind: u32,
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
    pub problem: Option<LogProblem>,
}

/// The position after a slot's valid entries, when an invalid entry header is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tail {
    /// Offset of the invalid entry header.
    pub pos: u64,
    /// End of the block it is in.
    pub block_end: u64,
}

/// What a log shows that its writer never leaves, whatever the crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogProblem {
    /// The entry at `pos` is not valid, yet a valid entry of the same log at `evidence`, flagged
    /// as written after a fence that covered every earlier entry, proves it was durable.
    Damaged { pos: u64, evidence: u64 },
    /// The `EXTEND` entry at `pos` continues the log in a block the writer could not have
    /// reserved: outside the heap, not whole chunks, or overlapping an earlier block of the log.
    BadExtension { pos: u64, offset: u64, len: u64 },
    /// The `EXTEND` entry at `pos` is not 16 bytes long.
    BadExtendLength { pos: u64, len: u64 },
    /// The chain of blocks is longer than the heap has chunks.
    ChainTooLong { pos: u64 },
}

impl std::fmt::Display for LogProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            LogProblem::Damaged { pos, evidence } => write!(
                f,
                "the entry at offset {pos:#x} is damaged: it fails its checksum, but the entry at {evidence:#x} was written after it had been made durable"
            ),
            LogProblem::BadExtension { pos, offset, len } => write!(
                f,
                "the extension entry at offset {pos:#x} continues the log at {offset:#x}+{len:#x}, which is not free heap space of whole chunks"
            ),
            LogProblem::BadExtendLength { pos, len } => write!(
                f,
                "the extension entry at offset {pos:#x} has {len} payload bytes, not 16"
            ),
            LogProblem::ChainTooLong { pos } => write!(
                f,
                "the extension entry at offset {pos:#x} continues a chain longer than the heap has chunks"
            ),
        }
    }
}

impl ParsedSlot {
    pub(crate) fn is_retired(&self) -> bool {
        self.entries[0].kind == kind::RETIRED
    }
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
    let word0 = region.read_u64(pos);
    let (kind_word, len) = (word0 as u32, word0 >> 32);
    let (k, f, aux) = (
        kind_word & 0xff,
        kind_word >> 8 & 0xff,
        (kind_word >> 16) as u16,
    );
    let valid_header = (kind::UNDO..=kind::RETIRED).contains(&k)
        && f & !flags::ALL == 0
        && entry_size(len) <= end - pos
        && region.read_u64(pos + 8) == gen;
    if !valid_header {
        return None;
    }
    // SAFETY: recovery and the checker parse only while nothing writes the pool.
    let bytes = unsafe { region.slice(pos + ENTRY_HEADER, len) };
    (entry_checksum(key, pos, kind_word, len as u32, bytes) == region.read_u64(pos + 16))
        .then_some((k, f, aux, len))
}

/// Looks past the invalid entry at `pos` for proof that it was durable: a valid entry of the same
/// log, later in the same block, written after a fence. Entries of a block are contiguous, so an
/// entry later in the block means one was written at `pos` before it; the flag says a fence
/// came between them. Without such proof the invalid entry is a torn tail: it was still being
/// written when the power went, and nothing the log protects depended on it.
fn find_damage_proof(region: &Region, key: &GenKey, gen: u64, pos: u64, end: u64) -> Option<u64> {
    let mut at = pos + ENTRY_ALIGN;
    while end.saturating_sub(at) >= ENTRY_HEADER {
        // The generation check first: almost every position fails it.
        if region.read_u64(at + 8) == gen {
            if let Some((_, f, _, _)) = valid_entry(region, key, gen, at, end) {
                if f & flags::FENCED != 0 {
                    return Some(at);
                }
            }
        }
        at += ENTRY_ALIGN;
    }
    None
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
        let Some((k, _, aux, len)) = valid_entry(region, &key, gen, pos, end) else {
            if slot.entries.is_empty() {
                return None;
            }
            slot.tail = Some(Tail {
                pos,
                block_end: end,
            });
            slot.problem = find_damage_proof(region, &key, gen, pos, end)
                .map(|evidence| LogProblem::Damaged { pos, evidence });
            break;
        };
        let payload = pos + ENTRY_HEADER;
        slot.entries.push(Entry {
            kind: k,
            aux,
            len,
            payload,
        });
        match k {
            kind::EXTEND => {
                if len != 16 {
                    slot.problem = Some(LogProblem::BadExtendLength { pos, len });
                    break;
                }
                // A hostile chain could loop; the heap cannot hold more blocks than chunks.
                if slot.blocks.len() as u64 >= geometry.chunk_count {
                    slot.problem = Some(LogProblem::ChainTooLong { pos });
                    break;
                }
                let offset = region.read_u64(payload);
                let block_len = region.read_u64(payload + 8);
                let overlaps = slot
                    .blocks
                    .iter()
                    .any(|&(o, l)| offset < o + l && o < offset.saturating_add(block_len));
                if !is_heap_block(geometry, offset, block_len) || overlaps {
                    slot.problem = Some(LogProblem::BadExtension {
                        pos,
                        offset,
                        len: block_len,
                    });
                    break;
                }
                slot.blocks.push((offset, block_len));
                pos = offset;
                end = offset + block_len;
            }
            kind::COMMIT | kind::RETIRED => break,
            _ => pos += entry_size(len),
        }
    }
    Some(slot)
}

/// Whether slot `index` starts with anything but zeros: where [`parse`] found no valid first
/// entry, that entry is damaged rather than never written.
pub(crate) fn starts_nonzero(region: &Region, index: u64) -> bool {
    let pos = Geometry::log_slot_offset(index);
    (0..3).any(|i| region.read_u64(pos + 8 * i) != 0)
}

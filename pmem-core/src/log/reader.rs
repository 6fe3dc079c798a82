//! Parsing a log slot: the valid prefix of entries of one generation.

use crate::layout::log::{entry_checksum, entry_size, kind, ENTRY_HEADER, LOG_SLOT_SIZE};
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
}

/// The position after a slot's valid entries, when an invalid entry header is there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tail {
    /// Offset of the invalid entry header.
    pub pos: u64,
    /// End of the block it is in.
    pub block_end: u64,
    /// The header claims this slot's generation and a valid kind and length, but the entry fails
    /// its checksum: torn by a crash mid-write, or damaged.
    pub damaged: bool,
}

impl ParsedSlot {
    pub(crate) fn is_retired(&self) -> bool {
        self.entries[0].kind == kind::RETIRED
    }
}

/// Parses slot `index`. `None` if even its first entry is invalid (a fresh or torn slot).
pub(crate) fn parse(region: &Region, geometry: &Geometry, index: u64) -> Option<ParsedSlot> {
    let mut pos = Geometry::log_slot_offset(index);
    let mut end = pos + LOG_SLOT_SIZE;
    let mut gen = None;
    let mut entries = Vec::new();
    // A hostile EXTEND chain could loop; the heap cannot hold more blocks than chunks.
    let mut blocks_left = geometry.chunk_count + 1;
    let mut tail = None;
    loop {
        if end - pos < ENTRY_HEADER {
            break;
        }
        tail = Some(Tail {
            pos,
            block_end: end,
            damaged: false,
        });
        let word0 = region.read_u64(pos);
        let (kind_word, len) = (word0 as u32, word0 >> 32);
        let (k, aux) = (kind_word & 0xffff, (kind_word >> 16) as u16);
        let entry_gen = region.read_u64(pos + 8);
        let checksum = region.read_u64(pos + 16);
        // The last generation is never written: the one after it could not be numbered.
        let valid_header = (kind::UNDO..=kind::RETIRED).contains(&k)
            && entry_size(len) <= end - pos
            && entry_gen != u64::MAX;
        if !valid_header {
            break;
        }
        if gen.is_some_and(|g| g != entry_gen) {
            break;
        }
        let payload = pos + ENTRY_HEADER;
        // SAFETY: recovery and the checker parse only while nothing writes the pool.
        let bytes = unsafe { region.slice(payload, len) };
        if entry_checksum(kind_word, len as u32, entry_gen, bytes) != checksum {
            tail = Some(Tail {
                pos,
                block_end: end,
                damaged: gen == Some(entry_gen),
            });
            break;
        }
        tail = None;
        gen = Some(entry_gen);
        entries.push(Entry {
            kind: k,
            aux,
            len,
            payload,
        });
        match k {
            kind::EXTEND => {
                if len != 16 || blocks_left == 0 {
                    break;
                }
                blocks_left -= 1;
                let next = region.read_u64(payload);
                let next_len = region.read_u64(payload + 8);
                let in_heap = next >= geometry.heap_offset
                    && next % 8 == 0
                    && next_len >= ENTRY_HEADER
                    && next <= geometry.heap_end()
                    && next_len <= geometry.heap_end() - next;
                if !in_heap {
                    break;
                }
                pos = next;
                end = next + next_len;
            }
            kind::COMMIT | kind::RETIRED => break,
            _ => pos += entry_size(len),
        }
    }
    Some(ParsedSlot {
        index,
        gen: gen?,
        entries,
        tail,
    })
}

/// Whether slot `index` starts with anything but zeros: where [`parse`] found no valid first
/// entry, that entry is damaged rather than never written.
pub(crate) fn starts_nonzero(region: &Region, index: u64) -> bool {
    let pos = Geometry::log_slot_offset(index);
    (0..3).any(|i| region.read_u64(pos + 8 * i) != 0)
}

//! Parsing a log slot: the valid prefix of entries of one generation.

use crate::layout::log::{entry_checksum, kind, padded, ENTRY_HEADER, LOG_SLOT_SIZE};
use crate::layout::Geometry;
use crate::region::Region;

/// One valid entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub kind: u32,
    /// Payload length in bytes.
    pub len: u64,
    /// Pool offset of the payload.
    pub payload: u64,
    pub checksum: u64,
}

/// The valid prefix of a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedSlot {
    pub index: u64,
    pub gen: u64,
    pub entries: Vec<Entry>,
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
    loop {
        if end - pos < ENTRY_HEADER {
            break;
        }
        let word0 = region.read_u64(pos);
        let (k, len) = (word0 as u32, word0 >> 32);
        let entry_gen = region.read_u64(pos + 8);
        let checksum = region.read_u64(pos + 16);
        if !(kind::UNDO..=kind::RETIRED).contains(&k) || padded(len) > end - pos - ENTRY_HEADER {
            break;
        }
        if gen.is_some_and(|g| g != entry_gen) {
            break;
        }
        let payload = pos + ENTRY_HEADER;
        // SAFETY: recovery and the checker parse only while nothing writes the pool.
        let bytes = unsafe { region.slice(payload, len) };
        if entry_checksum(k, len as u32, entry_gen, bytes) != checksum {
            break;
        }
        gen = Some(entry_gen);
        entries.push(Entry {
            kind: k,
            len,
            payload,
            checksum,
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
                    && next_len <= geometry.heap_end() - next;
                if !in_heap {
                    break;
                }
                pos = next;
                end = next + next_len;
            }
            kind::COMMIT | kind::RETIRED => break,
            _ => pos = payload + padded(len),
        }
    }
    Some(ParsedSlot {
        index,
        gen: gen?,
        entries,
    })
}

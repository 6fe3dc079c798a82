//! Structure-aware damage: each mutation picks one on-media structure (a header field, a chunk
//! table word, a run bitmap, the type table, a log entry, a pointer in the root or the heap, the
//! file's length), changes it to a value chosen to mean something to the code that reads it, and
//! recomputes the checksum guarding it (most of the time) so that the damage gets through.

use super::format::{self, kind, ChunkWord, Geometry, CHUNK_SIZE, ENTRY_HEADER, HEADER_FIELDS};
use crate::rng::Rng;

/// A value meant to mean something to whoever reads it as an offset or size in `g`'s pool.
fn interesting(rng: &mut Rng, g: &Geometry, old: u64) -> u64 {
    let chunk = g.chunk(rng.below(g.chunk_count.max(1) + 1));
    match rng.below(16) {
        0 => 0,
        1 => 1,
        2 => old.wrapping_add(1),
        3 => old.wrapping_sub(1),
        4 => old.wrapping_add(8),
        5 => old.wrapping_mul(2),
        6 => u64::MAX - rng.below(64),
        7 => 1 << rng.below(64),
        8 => chunk,
        9 => chunk.wrapping_add([8, 16, 64, 4096, CHUNK_SIZE - 8][rng.below(5) as usize]),
        10 => g.pool_size.wrapping_sub(rng.below(16) * 8),
        11 => g.chunk_entry(rng.below(g.chunk_count.max(1))),
        12 => format::LOG_OFFSET + rng.below(2 * format::LOG_SLOT_SIZE / 8) * 8,
        13 => g.root_offset,
        14 => rng.below(g.pool_size.max(1)),
        _ => rng.next_u64(),
    }
}

/// Chunks whose table entry is not free (or any chunk, if all are).
fn used_chunks(bytes: &[u8], g: &Geometry) -> Vec<u64> {
    let used: Vec<u64> = (0..g.chunk_count)
        .filter(|&i| format::u64_at(bytes, g.chunk_entry(i)) != 0)
        .collect();
    if used.is_empty() {
        (0..g.chunk_count.max(1)).collect()
    } else {
        used
    }
}

fn pick<T: Copy>(rng: &mut Rng, items: &[T]) -> T {
    items[rng.below(items.len() as u64) as usize]
}

fn header_field(bytes: &mut [u8], rng: &mut Rng, g: &Geometry) -> String {
    let (name, at, width) = pick(rng, HEADER_FIELDS);
    let old = format::u64_at(bytes, at as u64) & (u64::MAX >> (64 - 8 * width));
    let value = interesting(rng, g, old);
    let copies: &[usize] = match rng.below(4) {
        0 => &[0],
        1 => &[1],
        _ => &[0, 1],
    };
    let seal = rng.below(8) != 0;
    for &c in copies {
        format::put(bytes, (c * format::HEADER_SIZE + at) as u64, width, value);
        if seal {
            format::seal_header(bytes, c);
        }
    }
    format!("header {name} {old:#x} -> {value:#x} in copies {copies:?}, sealed {seal}")
}

fn header_bytes(bytes: &mut [u8], rng: &mut Rng) -> String {
    let at = format::LAYOUT_NAME
        + rng.below((format::ROOT_TYPE_END - format::LAYOUT_NAME) as u64 / 8) as usize * 8;
    let value = if rng.below(2) == 0 {
        rng.next_u64()
    } else {
        rng.below(256)
    };
    for c in 0..2 {
        format::put(bytes, (c * format::HEADER_SIZE + at) as u64, 8, value);
        format::seal_header(bytes, c);
    }
    format!("header word at {at:#x} (layout name / root type) = {value:#x}, both copies sealed")
}

fn chunk_word(bytes: &mut [u8], rng: &mut Rng, g: &Geometry) -> String {
    let used = used_chunks(bytes, g);
    let i = if rng.below(4) == 0 {
        rng.below(g.chunk_count.max(1))
    } else {
        pick(rng, &used)
    };
    let at = g.chunk_entry(i);
    let old_word = format::u64_at(bytes, at);
    let old = ChunkWord::decode(old_word);
    let mut w = old;
    let what = match rng.below(9) {
        0 => {
            w.kind = rng.below(5) as u8;
            "kind"
        }
        1 => {
            w.class = if rng.below(2) == 0 {
                rng.below(80) as u8
            } else {
                old.class.wrapping_add(1)
            };
            "class"
        }
        2 => {
            w.count = interesting(rng, g, old.count as u64) as u32;
            "count"
        }
        3 => {
            w.count = rng.below(g.chunk_count.saturating_add(2)) as u32;
            "small count"
        }
        4 => {
            // A run or span that starts inside another extent.
            w = ChunkWord {
                kind: 1 + rng.below(2) as u8,
                class: rng.below(40) as u8,
                count: 1 + rng.below(4) as u32,
            };
            "new extent"
        }
        5 => {
            let j = pick(rng, &used);
            let other = format::u64_at(bytes, g.chunk_entry(j));
            let fp = format::u64_at(bytes, g.chunk_entry(j) + 8);
            format::put(bytes, g.chunk_entry(j), 8, old_word);
            format::put(
                bytes,
                g.chunk_entry(j) + 8,
                8,
                format::u64_at(bytes, at + 8),
            );
            format::put(bytes, at + 8, 8, fp);
            w = ChunkWord::decode(other);
            "swapped with another chunk's entry"
        }
        6 => {
            w = ChunkWord {
                kind: 3,
                class: 0,
                count: rng.below(i.saturating_add(2)) as u32,
            };
            "continuation"
        }
        7 => {
            let fp = if rng.below(2) == 0 {
                format::u64_at(bytes, g.chunk_entry(pick(rng, &used)) + 8)
            } else {
                rng.next_u64()
            };
            format::put(bytes, at + 8, 8, fp);
            "fingerprint"
        }
        _ => {
            w = ChunkWord::decode(rng.next_u64());
            "random"
        }
    };
    format::put(bytes, at, 8, w.encode());
    format!("chunk {i} entry ({what}): {old:?} -> {w:?}")
}

fn bitmap(bytes: &mut [u8], rng: &mut Rng, g: &Geometry) -> String {
    let runs: Vec<u64> = (0..g.chunk_count)
        .filter(|&i| ChunkWord::decode(format::u64_at(bytes, g.chunk_entry(i))).kind == 1)
        .collect();
    let i = if runs.is_empty() || rng.below(5) == 0 {
        rng.below(g.chunk_count.max(1))
    } else {
        pick(rng, &runs)
    };
    let at = g.bitmap(i);
    let word = rng.below(16);
    let what = match rng.below(5) {
        0 => {
            let bit = rng.below(64);
            let old = format::u64_at(bytes, at + 8 * word);
            format::put(bytes, at + 8 * word, 8, old ^ 1 << bit);
            format!("flipped bit {}", word * 64 + bit)
        }
        1 => {
            format::put(bytes, at + 8 * word, 8, u64::MAX);
            format!("word {word} all set")
        }
        2 => {
            format::put(bytes, at + 8 * word, 8, 0);
            format!("word {word} cleared")
        }
        3 => {
            for w in 0..16 {
                format::put(bytes, at + 8 * w, 8, u64::MAX);
            }
            "every bit set".to_string()
        }
        _ => {
            let v = rng.next_u64();
            format::put(bytes, at + 8 * word, 8, v);
            format!("word {word} = {v:#x}")
        }
    };
    format!("run bitmap of chunk {i}: {what}")
}

fn type_table(bytes: &mut [u8], rng: &mut Rng, g: &Geometry) -> String {
    // The used part is at the front: names and slots of a few types.
    let at = format::TYPE_TABLE_OFFSET + rng.below(600);
    let (width, value) = match rng.below(4) {
        0 => (1, rng.below(256)),
        1 => (4, rng.below(64)),
        2 => (8, interesting(rng, g, format::u64_at(bytes, at))),
        _ => (2, rng.below(1 << 16)),
    };
    format::put(bytes, at, width, value);
    let seal = rng.below(8) != 0;
    if seal {
        format::seal_type_table(bytes);
    }
    format!(
        "type table byte {} ({width} bytes) = {value:#x}, sealed {seal}",
        at - format::TYPE_TABLE_OFFSET
    )
}

/// Damages a log entry, or forges one. The flag says whether the damage is to an entry before
/// the last one of the newest slot: what a crash cannot leave (a torn tail is the last entry),
/// so recovery must refuse it or still restore the state before the transaction.
fn log_entry(bytes: &mut [u8], rng: &mut Rng, g: &Geometry) -> (String, bool) {
    let slot = rng.below(2);
    let entries = format::entries(bytes, slot);
    let other = format::entries(bytes, 1 - slot);
    let newest = match (entries.first(), other.first()) {
        (Some(e), Some(o)) => e.gen > o.gen,
        (Some(_), None) => true,
        _ => false,
    };
    let seal = rng.below(6) != 0;
    if entries.is_empty() || rng.below(5) == 0 {
        // Forge an entry: at the slot's start (new generation) or after the last one (same).
        let (at, gen) = match entries.last() {
            Some(e) if rng.below(2) == 0 => (e.at + format::entry_size(e.len), e.gen),
            Some(e) => (e.at, e.gen.wrapping_add(rng.below(3))),
            None => (
                format::LOG_OFFSET + slot * format::LOG_SLOT_SIZE,
                1 + rng.below(4),
            ),
        };
        let k = pick(
            rng,
            &[
                kind::UNDO,
                kind::UNDO,
                kind::REDO,
                kind::EXTEND,
                kind::RANGES,
            ],
        );
        let target = interesting(rng, g, g.root_offset);
        let payload: Vec<u64> = match k {
            kind::UNDO => vec![target, rng.next_u64(), rng.next_u64()],
            kind::REDO => vec![
                (1 + rng.below(4)) << 56 | (target & ((1 << 56) - 1)),
                interesting(rng, g, 0),
            ],
            kind::EXTEND => vec![target, interesting(rng, g, CHUNK_SIZE)],
            _ => vec![target, interesting(rng, g, 64)],
        };
        let len = payload.len() as u64 * 8;
        format::put(bytes, at, 8, k as u64 | len << 32);
        format::put(bytes, at + 8, 8, gen);
        for (i, w) in payload.iter().enumerate() {
            format::put(bytes, at + ENTRY_HEADER + 8 * i as u64, 8, *w);
        }
        if seal {
            format::seal_entry(bytes, at);
        }
        return (
            format!(
                "forged log entry kind {k} gen {gen} at {at:#x} in slot {slot}: {payload:x?}, sealed {seal}"
            ),
            false,
        );
    }
    let i = rng.below(entries.len() as u64) as usize;
    let e = entries[i];
    let what = match rng.below(7) {
        0 => {
            let k = rng.below(8) as u32 | (e.kind_word & 0xffff_ff00);
            format::put(bytes, e.at, 4, k as u64);
            format!("kind word {:#x} -> {k:#x}", e.kind_word)
        }
        1 => {
            let aux = rng.below(1 << 16);
            format::put(bytes, e.at + 2, 2, aux);
            format!("aux = {aux}")
        }
        2 => {
            let len = match rng.below(4) {
                0 => e.len.wrapping_add(8),
                1 => e.len.saturating_sub(8),
                2 => rng.below(1 << 17),
                _ => u32::MAX as u64,
            } as u32;
            format::put(bytes, e.at + 4, 4, len as u64);
            format!("len {} -> {len}", e.len)
        }
        3 => {
            let gen = e.gen.wrapping_add(pick(rng, &[1, u64::MAX, 2]));
            format::put(bytes, e.at + 8, 8, gen);
            format!("gen {} -> {gen}", e.gen)
        }
        4 | 5 => {
            // A payload word: an undo target, an op, a range, an extension.
            let words = (e.len / 8).max(1);
            let w = rng.below(words.min(8));
            let at = e.at + ENTRY_HEADER + 8 * w;
            let old = format::u64_at(bytes, at);
            let v = interesting(rng, g, old);
            format::put(bytes, at, 8, v);
            format!("payload word {w} {old:#x} -> {v:#x}")
        }
        _ => {
            let at = e.at + ENTRY_HEADER + rng.below(e.len.max(1));
            let old = bytes.get(at as usize).copied().unwrap_or(0);
            format::put(bytes, at, 1, (old ^ 1 << rng.below(8)) as u64);
            format!("payload byte at +{} flipped", at - e.at)
        }
    };
    if seal {
        format::seal_entry(bytes, e.at);
    }
    // Damage (not a resealed forgery, which a hostile file may write and recovery must then
    // trust) followed by an entry written after a fence that covered it was durable: it must be
    // refused or undone whole. Damage followed only by entries of its own fence group reads as
    // the torn tail of that group (`pmem-core/src/layout/log.rs`), so nothing is promised there.
    let proven = entries[i + 1..]
        .iter()
        .any(|later| later.gen == e.gen && later.kind_word >> 8 & 0xff & format::FENCED != 0);
    let middle = newest && !seal && proven;
    (
        format!(
            "log slot {slot} entry {i} of {} (kind {}, at {:#x}{}): {what}, sealed {seal}",
            entries.len(),
            e.kind_word & 0xff,
            e.at,
            if middle {
                ", newest slot, a fenced entry after it"
            } else {
                ""
            }
        ),
        middle,
    )
}

fn pointer(bytes: &mut [u8], rng: &mut Rng, g: &Geometry) -> String {
    let at = if rng.below(3) == 0 {
        g.root_offset.wrapping_add(8 * rng.below(5))
    } else {
        // A word of an allocated chunk: a node's next or items, a slice's words.
        let i = pick(rng, &used_chunks(bytes, g));
        let words = if rng.below(2) == 0 {
            64
        } else {
            CHUNK_SIZE / 8
        };
        g.chunk(i).wrapping_add(8 * rng.below(words))
    };
    let old = format::u64_at(bytes, at);
    let v = interesting(rng, g, old);
    format::put(bytes, at, 8, v);
    format!("word at {at:#x} {old:#x} -> {v:#x}")
}

fn raw(bytes: &mut [u8], rng: &mut Rng, g: &Geometry) -> String {
    let end = g.heap_offset.clamp(1, bytes.len() as u64);
    let at = rng.below(end);
    let bit = rng.below(8);
    if let Some(b) = bytes.get_mut(at as usize) {
        *b ^= 1 << bit;
    }
    format!("bit {bit} of byte {at:#x} flipped")
}

fn length(bytes: &mut Vec<u8>, rng: &mut Rng) -> String {
    let old = bytes.len();
    let new = match rng.below(5) {
        0 => old.saturating_sub(4096),
        1 => old.saturating_sub(1 + rng.below(7) as usize),
        2 => old + 4096,
        3 => old + 1 + rng.below(7) as usize,
        _ => old / 2,
    };
    bytes.resize(new, 0);
    format!("file length {old} -> {new}")
}

/// What [`mutate`] did.
#[derive(Debug, Clone)]
pub struct Damage {
    /// Each mutation, in words.
    pub description: String,
    /// Every mutation damaged, without resealing it, an entry of the newest log that a later
    /// fenced entry proves durable (see `log_entry`): opening must refuse the pool or give the
    /// state it held before the interrupted transaction.
    pub log_middle_only: bool,
}

/// Damages `bytes` with one to three mutations chosen by `rng`.
pub fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) -> Damage {
    let n = 1 + rng.below(3) * rng.below(2);
    let mut done = Vec::new();
    let mut log_middle_only = true;
    if bytes.len() < 2 * format::HEADER_SIZE {
        // Not a pool: nothing to aim at.
        return Damage {
            description: "too short to damage".to_string(),
            log_middle_only: false,
        };
    }
    // Where the structures are, from the valid pool, however the header is damaged after.
    let g = Geometry::read(bytes);
    for _ in 0..n {
        let what = match rng.below(20) {
            0 | 1 => header_field(bytes, rng, &g),
            2 => header_bytes(bytes, rng),
            3..=6 => chunk_word(bytes, rng, &g),
            7 | 8 => bitmap(bytes, rng, &g),
            9 | 10 => type_table(bytes, rng, &g),
            11..=14 => {
                let (what, middle) = log_entry(bytes, rng, &g);
                log_middle_only &= middle;
                done.push(what);
                continue;
            }
            15..=17 => pointer(bytes, rng, &g),
            18 => raw(bytes, rng, &g),
            _ => length(bytes, rng),
        };
        log_middle_only = false;
        done.push(what);
    }
    Damage {
        description: done.join("; "),
        log_middle_only,
    }
}

//! Heap metadata that a commit applied but did not flush, and carrying it forward.
//!
//! A commit's heap ops are applied after its fence and need to be durable only before the log
//! recording them can be overwritten: by the next commit's fence. Flushing them costs a cache line
//! each, and allocation streams rewrite the very same bitmap word commit after commit, so the
//! line written back by one fence is dirtied again right after it. When the next commit changes
//! that word anyway, its record can carry the word's whole value instead (one `Write` op in
//! place of its own `SetBits`, no bigger): the newest committed log then describes the word, so
//! it needs no flush at this fence. It is flushed at the first fence whose commit does not carry
//! it.
//!
//! Data is carried the same way, by the redo entries themselves: a range a commit copied into
//! place needs no flush at the next commit's fence if that commit logs every one of its bytes
//! anew (a counter, a list head, a buffer rewritten transaction after transaction). Until that
//! fence the older commit's log, in the other slot, holds the bytes; after it, the newer one
//! does, and its own copy into place rewrites the range, which stays pending. The first fence
//! that does not log the range again (another transaction's, an abort's, a close's) flushes it.

use crate::layout::log::Op;
use crate::persist::Domain;
use crate::region::Region;

/// Metadata and data written since the last fence that flushed it.
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    /// `(target, len)` of every applied op, consecutive repeats merged.
    written: Vec<(u64, u64)>,
    /// `(target, len)` of every applied redo write, the first `kept` of them carried through
    /// the last fence (see [`flush`](Self::flush)).
    data: Vec<(u64, u64)>,
    kept: usize,
    /// Words the record being committed carries, from [`fold_into`](Self::fold_into).
    carried: Vec<u64>,
}

impl Deferred {
    /// Records an applied op's target.
    #[inline]
    pub(crate) fn note(&mut self, target: u64, len: u64) {
        if self.written.last() != Some(&(target, len)) {
            self.written.push((target, len));
        }
    }

    /// Records a write set range copied into place after its commit's fence (once, if it was
    /// carried through that fence already).
    #[inline]
    pub(crate) fn note_data(&mut self, target: u64, len: u64) {
        if self.kept == 0 || !self.data[..self.kept].contains(&(target, len)) {
            self.data.push((target, len));
        }
    }

    /// Flushes every pending line except those of words carried by the commit about to be
    /// fenced (see [`fold_into`](Self::fold_into)) and of data ranges inside one of `logged`,
    /// the ranges that commit's redo entries hold (empty for any other fence), and forgets the
    /// flushed ones. With `prefetch`, asks for the lines back at once: the next allocations and
    /// frees rewrite them.
    #[inline]
    pub(crate) fn flush(&mut self, domain: &Domain, prefetch: bool, logged: &[(u64, u64)]) {
        if self.data.is_empty() {
            self.kept = 0;
        } else {
            self.flush_data(domain, prefetch, logged);
        }
        if self.written.is_empty() {
            self.carried.clear();
            return;
        }
        let carried = &mut self.carried;
        let mut last_line = u64::MAX;
        self.written.retain(|&(target, len)| {
            // Keep one entry per carried word (a repeat is flushed: harmless, and the list stays
            // bounded however ops interleave).
            if len == 8 {
                if let Some(i) = carried.iter().position(|&w| w == target) {
                    carried.swap_remove(i);
                    return true;
                }
            }
            if len > 64 || target & !63 != last_line {
                domain.flush(target, len);
                if prefetch {
                    domain.prefetch_write(target, len);
                }
                last_line = target & !63;
            }
            false
        });
        self.carried.clear();
    }

    /// The data part of [`flush`](Self::flush), out of line: allocations and frees have none.
    #[inline(never)]
    fn flush_data(&mut self, domain: &Domain, prefetch: bool, logged: &[(u64, u64)]) {
        // A few ranges against a few: a large transaction flushes everything, as the list
        // of what stays pending must stay short.
        let carry = !logged.is_empty()
            && self.data.len() <= MAX_CARRIED_DATA
            && logged.len() <= MAX_LOGGED_SCANNED;
        // Compacted by hand: `retain` was not inlined, and cost a W5 insert 70 instructions.
        let mut kept = 0;
        for i in 0..self.data.len() {
            let (target, len) = self.data[i];
            let relogged = carry
                && logged
                    .iter()
                    .any(|&(at, n)| at <= target && target + len <= at + n);
            if relogged {
                self.data[kept] = (target, len);
                kept += 1;
                continue;
            }
            domain.flush(target, len);
            if prefetch && len <= 512 {
                domain.prefetch_write(target, len);
            }
        }
        self.data.truncate(kept);
        self.kept = kept;
    }

    /// Builds in `out` the ops a commit logs: `own`, with every pending word that an own op also
    /// changes folded into one `Write` of its final value, computed from `region` (the pool's
    /// current contents: the single writer's view). Words under an own `Zero` are not folded.
    /// The folded words are remembered, so that [`flush`](Self::flush) leaves them pending.
    pub(crate) fn fold_into(&mut self, region: &Region, own: &[Op], out: &mut Vec<Op>) {
        out.clear();
        out.extend_from_slice(own);
        self.carried.clear();
        for &(word, len) in &self.written {
            if len != 8 || self.carried.contains(&word) {
                continue;
            }
            let zeroed = own.iter().any(|op| match *op {
                Op::Zero { target, len } => target < word + 8 && word < target + len,
                _ => false,
            });
            if zeroed {
                continue;
            }
            let mut value = region.read_u64(word);
            let mut first = None;
            let mut i = 0;
            while i < out.len() {
                let Some(next) = fold_word(out[i], word, value) else {
                    i += 1;
                    continue;
                };
                value = next;
                if first.is_none() {
                    first = Some(i);
                    i += 1;
                } else {
                    out.remove(i);
                }
            }
            if let Some(i) = first {
                out[i] = Op::Write {
                    target: word,
                    value,
                };
                self.carried.push(word);
            }
        }
    }

    /// Forgets the folded words: the commit whose record carries them was not logged.
    pub(crate) fn drop_carry(&mut self) {
        self.carried.clear();
    }
}

/// Data ranges left pending at most, and a commit's redo ranges scanned at most, for one to
/// carry the other: beyond, everything is flushed.
const MAX_CARRIED_DATA: usize = 8;
const MAX_LOGGED_SCANNED: usize = 16;

/// The value of `word` after `op`, if `op` is a word op on it.
fn fold_word(op: Op, word: u64, value: u64) -> Option<u64> {
    match op {
        Op::SetBits { target, mask } if target == word => Some(value | mask),
        Op::ClearBits { target, mask } if target == word => Some(value & !mask),
        Op::Write { target, value } if target == word => Some(value),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::PoolImage;

    fn region_with(words: &[(u64, u64)]) -> (PoolImage, Region) {
        let mut image = PoolImage::zeroed(4096);
        // SAFETY: the image outlives the region in each test (returned together; the region
        // points into the image's heap buffer, which does not move with it).
        let region = unsafe { Region::new(image.as_mut_ptr(), 4096) };
        for &(at, v) in words {
            region.write_u64(at, v);
        }
        (image, region)
    }

    #[test]
    fn folds_own_ops_on_a_pending_word() {
        let (_image, region) = region_with(&[(64, 0b0011)]);
        let mut d = Deferred::default();
        d.note(64, 8);
        d.note(512, 64);
        let own = [
            Op::SetBits {
                target: 64,
                mask: 0b0100,
            },
            Op::SetBits {
                target: 128,
                mask: 1,
            },
            Op::ClearBits {
                target: 64,
                mask: 0b0001,
            },
        ];
        let mut out = Vec::new();
        d.fold_into(&region, &own, &mut out);
        assert_eq!(
            out,
            [
                Op::Write {
                    target: 64,
                    value: 0b0110
                },
                Op::SetBits {
                    target: 128,
                    mask: 1
                },
            ]
        );
        assert_eq!(d.carried, [64]);
    }

    #[test]
    fn carried_words_stay_pending_once() {
        let (_image, region) = region_with(&[]);
        // SAFETY: the image stays alive (and mapped) until the end of the test.
        let domain = unsafe {
            crate::persist::Domain::new(region.base(), 4096, crate::persist::FlushMode::Eadr)
        };
        let mut d = Deferred::default();
        for round in 0..10 {
            // The word is carried, and applied again between other targets each round.
            d.note(8, 8);
            d.note(128 + round * 64, 8);
            d.note(8, 8);
            let own = [Op::SetBits { target: 8, mask: 1 }];
            let mut out = Vec::new();
            d.fold_into(&region, &own, &mut out);
            assert_eq!(d.carried, [8]);
            d.flush(&domain, false, &[]);
            assert_eq!(d.written, [(8, 8)], "round {round}");
        }
    }

    #[test]
    fn data_stays_pending_only_inside_what_the_commit_logs_again() {
        let (_image, region) = region_with(&[]);
        // SAFETY: the image stays alive (and mapped) until the end of the test.
        let domain = unsafe {
            crate::persist::Domain::new(region.base(), 4096, crate::persist::FlushMode::Eadr)
        };
        let mut d = Deferred::default();
        d.note_data(64, 8);
        d.note_data(128, 256);
        d.note_data(1024, 16);
        // Logged again: the counter inside a larger run, and the buffer whole; the third range
        // only in part, so it is flushed.
        d.flush(&domain, false, &[(0, 128), (128, 256), (1024, 8)]);
        assert_eq!(d.data, [(64, 8), (128, 256)]);
        // The next commit's copy into place notes them again: kept once.
        d.note_data(64, 8);
        d.note_data(128, 256);
        d.note_data(2048, 8);
        assert_eq!(d.data, [(64, 8), (128, 256), (2048, 8)]);
        // Any other fence flushes everything.
        d.flush(&domain, false, &[]);
        assert!(d.data.is_empty());
        // More pending ranges than are ever carried: all flushed, whatever is logged.
        for i in 0..=MAX_CARRIED_DATA as u64 {
            d.note_data(i * 64, 8);
        }
        d.flush(&domain, false, &[(0, 4096)]);
        assert!(d.data.is_empty());
    }

    #[test]
    fn leaves_words_under_a_zero_and_words_no_op_touches() {
        let (_image, region) = region_with(&[(64, 1), (72, 1)]);
        let mut d = Deferred::default();
        d.note(64, 8);
        d.note(72, 8);
        let own = [
            Op::Zero { target: 0, len: 72 },
            Op::SetBits {
                target: 64,
                mask: 2,
            },
        ];
        let mut out = Vec::new();
        d.fold_into(&region, &own, &mut out);
        assert_eq!(out, own);
        assert!(d.carried.is_empty());
    }
}

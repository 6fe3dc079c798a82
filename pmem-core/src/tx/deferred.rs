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

use crate::layout::log::Op;
use crate::persist::Domain;
use crate::region::Region;

/// Metadata and data written since the last fence that flushed it.
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    /// `(target, len)` of every applied op, consecutive repeats merged.
    written: Vec<(u64, u64)>,
    /// `(target, len)` of every applied redo write: flushed at the next fence, never carried.
    data: Vec<(u64, u64)>,
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

    /// Records a write set range copied into place after its commit's fence.
    #[inline]
    pub(crate) fn note_data(&mut self, target: u64, len: u64) {
        self.data.push((target, len));
    }

    /// Flushes every pending line except those of words carried by the commit about to be
    /// fenced (see [`fold_into`](Self::fold_into)), and forgets them. With `prefetch`, asks for the lines
    /// back at once: the next allocations and frees rewrite them.
    #[inline]
    pub(crate) fn flush(&mut self, domain: &Domain, prefetch: bool) {
        if !self.data.is_empty() {
            for &(target, len) in &self.data {
                domain.flush(target, len);
                if prefetch && len <= 512 {
                    domain.prefetch_write(target, len);
                }
            }
            self.data.clear();
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
            d.flush(&domain, false);
            assert_eq!(d.written, [(8, 8)], "round {round}");
        }
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

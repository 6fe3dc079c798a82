//! A set of byte ranges with a value each, answering "which range contains this one?": small
//! transactions touch a handful of ranges, so it scans a vector (no allocation once warm) and
//! switches to a B-tree only when a transaction grows large.

use std::collections::BTreeMap;

const SMALL: usize = 16;

#[derive(Debug)]
pub(crate) struct RangeMap<V: Copy> {
    small: Vec<(u64, u64, V)>,
    big: BTreeMap<u64, (u64, V)>,
}

impl<V: Copy> Default for RangeMap<V> {
    fn default() -> Self {
        RangeMap {
            small: Vec::new(),
            big: BTreeMap::new(),
        }
    }
}

impl<V: Copy> RangeMap<V> {
    /// Adds `[start, start + len)`. Ranges may overlap; lookups find one that contains.
    pub(crate) fn insert(&mut self, start: u64, len: u64, value: V) {
        if self.big.is_empty() && self.small.len() < SMALL {
            self.small.push((start, len, value));
            return;
        }
        if self.big.is_empty() {
            for (s, l, v) in self.small.drain(..) {
                Self::insert_big(&mut self.big, s, l, v);
            }
        }
        Self::insert_big(&mut self.big, start, len, value);
    }

    fn insert_big(big: &mut BTreeMap<u64, (u64, V)>, start: u64, len: u64, value: V) {
        // Keep the longer range for a shared start, so containment answers stay right.
        match big.get(&start) {
            Some(&(l, _)) if l >= len => {}
            _ => {
                big.insert(start, (len, value));
            }
        }
    }

    /// A range that contains all of `[start, start + len)`, as `(start, len, value)`.
    pub(crate) fn containing(&self, start: u64, len: u64) -> Option<(u64, u64, V)> {
        let end = start.checked_add(len)?;
        if self.big.is_empty() {
            return self
                .small
                .iter()
                .rev()
                .find(|&&(s, l, _)| s <= start && end <= s + l)
                .copied();
        }
        // Ranges are few and short-lived: checking the nearest start below is enough for the
        // allocator's disjoint objects and a good answer for snapshots (a miss only logs again).
        let (&s, &(l, v)) = self.big.range(..=start).next_back()?;
        (end <= s + l).then_some((s, l, v))
    }

    pub(crate) fn clear(&mut self) {
        self.small.clear();
        if !self.big.is_empty() {
            self.big.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_containing_range_small_and_big() {
        let mut m = RangeMap::default();
        for i in 0..40u64 {
            m.insert(i * 100, 50, i);
            assert_eq!(m.containing(i * 100 + 10, 40), Some((i * 100, 50, i)));
            assert_eq!(m.containing(i * 100 + 10, 41), None);
            assert_eq!(m.containing(0, 8), Some((0, 50, 0)));
        }
        m.clear();
        assert_eq!(m.containing(0, 8), None);
    }
}

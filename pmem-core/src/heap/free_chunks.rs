//! The volatile index of free chunks: best-fit by size, coalescing by address.

use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
pub(crate) struct FreeChunks {
    by_start: BTreeMap<u64, u64>,
    by_size: BTreeSet<(u64, u64)>,
    /// Free chunks in all.
    total: u64,
}

impl FreeChunks {
    /// Takes `count` contiguous chunks: the smallest free extent that fits, lowest address first.
    pub(crate) fn take(&mut self, count: u64) -> Option<u64> {
        let &(len, start) = self.by_size.range((count, 0)..).next()?;
        self.remove(start, len);
        if len > count {
            self.insert(start + count, len - count);
        }
        Some(start)
    }

    /// Returns `count` chunks from `start`, merging with free neighbours.
    pub(crate) fn give(&mut self, mut start: u64, mut count: u64) {
        if let Some((&prev, &plen)) = self.by_start.range(..start).next_back() {
            debug_assert!(prev + plen <= start, "double free of chunks at {start}");
            if prev + plen == start {
                self.remove(prev, plen);
                start = prev;
                count += plen;
            }
        }
        if let Some(&nlen) = self.by_start.get(&(start + count)) {
            self.remove(start + count, nlen);
            count += nlen;
        }
        self.insert(start, count);
    }

    /// Takes exactly `[start, start + count)`, which must be free.
    pub(crate) fn take_exact(&mut self, start: u64, count: u64) {
        let (&s, &len) = self
            .by_start
            .range(..=start)
            .next_back()
            .expect("the range is free");
        assert!(
            s + len >= start + count,
            "chunks {start}+{count} are not free"
        );
        self.remove(s, len);
        if start > s {
            self.insert(s, start - s);
        }
        if s + len > start + count {
            self.insert(start + count, s + len - (start + count));
        }
    }

    /// Free chunks in all.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Chunks in the largest free extent.
    pub(crate) fn largest(&self) -> u64 {
        self.by_size.last().map_or(0, |&(len, _)| len)
    }

    fn insert(&mut self, start: u64, len: u64) {
        self.by_start.insert(start, len);
        self.by_size.insert((len, start));
        self.total += len;
    }

    fn remove(&mut self, start: u64, len: u64) {
        self.by_start.remove(&start);
        self.by_size.remove(&(len, start));
        self.total -= len;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_fit_and_coalesce() {
        let mut f = FreeChunks::default();
        f.give(0, 10);
        f.give(20, 3);
        assert_eq!(f.take(2), Some(20));
        assert_eq!(f.take(5), Some(0));
        assert_eq!(f.largest(), 5);
        assert_eq!(f.total(), 6);
        f.give(0, 5);
        assert_eq!(f.largest(), 10);
        f.give(20, 2);
        assert_eq!(f.largest(), 10);
        assert_eq!(f.take(11), None);
    }
}

//! [`Range`]: in-order iteration over a [`PBTreeMap`](super::PBTreeMap), from a lower bound to
//! an upper one.

use std::ops::{Bound, RangeBounds};

use pmem_core::{PPtr, Persistent, PoolRead};

use super::node::{load, Node, MAX_DEPTH};
use crate::{Error, Inconsistency, Result};

/// Entries of a [`PBTreeMap`](super::PBTreeMap) in increasing key order, in place, from
/// [`range`](super::PBTreeMap::range) or [`iter`](super::PBTreeMap::iter). Yields an error
/// (once, then ends) if the tree is damaged, or yields more entries than its length.
///
/// ```
/// # use pmem_core::{Persistent, Pool};
/// # use pmem_collections::PBTreeMap;
/// # #[derive(Persistent)] #[repr(C)] struct Root { map: PBTreeMap<u64, u64> }
/// # let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// # let map = pool.transaction(|tx| -> pmem_collections::Result<_> {
/// #     let map = PBTreeMap::new(tx)?;
/// #     tx.root_mut().set_map(map)?;
/// #     for k in 0..20 {
/// #         map.insert(tx, k, k * k)?;
/// #     }
/// #     Ok(map)
/// # })?;
/// let squares = pool.read(|r| {
///     map.range(r, 3..=5).map(|e| e.map(|(_, &v)| v)).collect::<pmem_collections::Result<Vec<_>>>()
/// })??;
/// assert_eq!(squares, [9, 16, 25]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Range<'r, A, K, V> {
    r: &'r A,
    /// The path from the root: each node and the index of its next key.
    stack: Vec<(&'r Node<K, V>, usize)>,
    upper: Bound<K>,
    /// Entries the tree's length still allows: a damaged tree whose nodes share children
    /// could otherwise yield the same entries over and over.
    left: u64,
    len: u64,
    error: Option<Error>,
}

impl<'r, A: PoolRead, K: Persistent + Copy + Ord, V: Persistent + Copy> Range<'r, A, K, V> {
    pub(super) fn new(
        r: &'r A,
        meta: Result<(PPtr<Node<K, V>>, u64)>,
        range: impl RangeBounds<K>,
    ) -> Self {
        let mut iter = Range {
            r,
            stack: Vec::new(),
            upper: range.end_bound().cloned(),
            left: 0,
            len: 0,
            error: None,
        };
        let seeked = meta.map(|(root, len)| {
            (iter.left, iter.len) = (len, len);
            root
        });
        let seeked = seeked.and_then(|root| match root.is_null() {
            true => Ok(()),
            false => iter.seek(root, range.start_bound()),
        });
        if let Err(e) = seeked {
            iter.fail_later(e);
        }
        iter
    }

    /// Descends from `p` to the first key not below `lower`, pushing the path.
    fn seek(&mut self, mut p: PPtr<Node<K, V>>, lower: Bound<&K>) -> Result<()> {
        loop {
            if self.stack.len() > MAX_DEPTH {
                return Err(Inconsistency::BTreeTooDeep.into());
            }
            let node = load(self.r, p)?;
            let keys = &node.keys[..node.n()];
            let i = match lower {
                Bound::Unbounded => 0,
                Bound::Included(k) => keys.partition_point(|x| x < k),
                Bound::Excluded(k) => keys.partition_point(|x| x <= k),
            };
            self.stack.push((node, i));
            if node.is_leaf() {
                return Ok(());
            }
            p = node.children[i];
        }
    }

    fn fail_later(&mut self, e: Error) {
        self.stack.clear();
        self.error = Some(e);
    }

    fn below_upper(&self, key: &K) -> bool {
        match &self.upper {
            Bound::Unbounded => true,
            Bound::Included(u) => key <= u,
            Bound::Excluded(u) => key < u,
        }
    }
}

impl<'r, A: PoolRead, K: Persistent + Copy + Ord, V: Persistent + Copy> Iterator
    for Range<'r, A, K, V>
{
    type Item = Result<(&'r K, &'r V)>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        loop {
            let &mut (node, ref mut i) = self.stack.last_mut()?;
            if *i < node.n() {
                let at = *i;
                *i += 1;
                if !self.below_upper(&node.keys[at]) {
                    self.stack.clear();
                    return None;
                }
                if self.left == 0 {
                    self.stack.clear();
                    return Some(Err(Inconsistency::BTreeCountMismatch {
                        count: self.len,
                        found: self.len + 1,
                    }
                    .into()));
                }
                self.left -= 1;
                if !node.is_leaf() {
                    if let Err(e) = self.seek(node.children[at + 1], Bound::Unbounded) {
                        self.fail_later(e);
                    }
                }
                return Some(Ok((&node.keys[at], &node.values[at])));
            }
            self.stack.pop();
        }
    }
}

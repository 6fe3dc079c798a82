//! [`PBTreeMap`]: an ordered persistent map, a B-tree of order [`ORDER`].
//!
//! The classic algorithms (Cormen et al., chapter 18): insertion splits full nodes on the way
//! down, and removal makes sure every node it descends into has more than the minimum number of
//! keys, by borrowing from a sibling or merging with one, so it never walks back up. Every node
//! holds at least [`MIN_KEYS`] keys except the root, and all leaves are at the same depth.

mod iter;
mod node;
mod ops;

use std::fmt;
use std::ops::RangeBounds;

use pmem_core::{PPtr, Persistent, PoolRead, Tx};

pub use iter::Range;
pub use node::{Node, MAX_KEYS, MIN_KEYS, ORDER};

use crate::{Inconsistency, Result};
use node::{is_zero, load, MAX_DEPTH};

/// A persistent ordered map from `K` to `V`, shaped like [`std::collections::BTreeMap`].
///
/// A handle: a `#[repr(transparent)]` persistent pointer to the map's metadata, `Copy` and
/// [`Persistent`], so it can be a field of any persistent struct. The null handle is no map;
/// [`new`](Self::new) makes one. Reads take any [`PoolRead`]; changes take the [`Tx`] they are
/// part of, and are exactly as failure-atomic as it.
///
/// `K` and `V` are [`Persistent`] plain data (hence `Copy`); keys are ordered by `K`'s [`Ord`].
/// A `K` whose `Ord` is not a total order gives wrong answers, never unsafety. The node
/// ([`Node`]) must have no padding: true when `7 * size_of::<K>()` is a multiple of `V`'s
/// alignment and the node's size a multiple of 8, e.g. for any sizes that are multiples of 8.
///
/// # Layout
///
/// ```text
/// PBTreeMap ──> BTreeMeta { root, len }
///                            │
///                            v
///               Node { children: [PPtr<Node>; 8], len, keys: [K; 7], values: [V; 7] }
/// ```
///
/// A node is a leaf when its first child is null; slots past `len` are zero, so no stale key,
/// value or pointer lingers in a node.
///
/// # Cost (fences per operation, in a transaction of its own)
///
/// Nodes are read in place, changed in DRAM and written back whole, each logging the node's old
/// bytes first (one fence per node changed; none for a node the transaction allocated), then
/// the metadata (one fence), then the commit (one fence). For `u64` keys and values a node is
/// 184 bytes, three lines.
///
/// | operation | fences | lines written back |
/// |---|---|---|
/// | `get`, `range`, `first_key_value`, iteration | 0 | 0 |
/// | `insert` of a new key, no split | 3 | the leaf and the metadata, their log entries, the commit record |
/// | each split on the way down | 2 more (the split node and its parent) | the new node, the two changed ones |
/// | `insert` of a present key | 2 | the value and its log entry |
/// | `remove` from a leaf that keeps enough keys | 3 | like an insert |
/// | each borrow or merge on the way down | 2 to 3 more | the nodes involved |
///
/// # Crash guarantees
///
/// Every change is logged by the transaction it runs in: after a crash, recovery leaves the
/// tree exactly as the last committed transaction left it, splits and merges included, with no
/// node leaked.
///
/// # Damaged pools
///
/// Every walk is bounded (depth by 64, node count by the recorded length), every pointer is
/// checked by the pool, and a node claiming too many keys is refused:
/// [`verify`](Self::verify) checks every invariant.
///
/// ```
/// use pmem_core::{Persistent, Pool};
/// use pmem_collections::PBTreeMap;
///
/// #[derive(Persistent)]
/// #[repr(C)]
/// struct Root { orders: PBTreeMap<u64, u64> }
///
/// let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
/// pool.transaction(|tx| -> pmem_collections::Result<()> {
///     let orders = PBTreeMap::new(tx)?;
///     tx.root_mut().set_orders(orders)?;
///     for k in [5, 3, 9, 1] {
///         orders.insert(tx, k, k * 10)?;
///     }
///     Ok(())
/// })?;
/// let orders = pool.read(|r| r.root().orders)?;
/// pool.read(|r| -> pmem_collections::Result<()> {
///     let all: Vec<_> = orders.iter(r).collect::<Result<_, _>>()?;
///     assert_eq!(all, [(&1, &10), (&3, &30), (&5, &50), (&9, &90)]);
///     let some: Vec<_> = orders.range(r, 2..9).map(|e| e.map(|(k, _)| *k)).collect::<Result<_, _>>()?;
///     assert_eq!(some, [3, 5]);
///     assert_eq!(orders.first_key_value(r)?, Some((&1, &10)));
///     assert_eq!(orders.last_key_value(r)?, Some((&9, &90)));
///     Ok(())
/// })??;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Persistent)]
#[repr(transparent)]
pub struct PBTreeMap<K, V> {
    meta: PPtr<BTreeMeta<K, V>>,
}

/// A B-tree's metadata: what [`PBTreeMap::as_ptr`] points at.
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
/// let meta = pool.read(|r| *r.get(map.as_ptr()).unwrap())?;
/// assert_eq!(meta.len, 20);
/// assert!(!meta.root.is_null());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Persistent, Clone, Copy, Debug)]
#[repr(C)]
pub struct BTreeMeta<K, V> {
    /// The root node; null when the map is empty.
    pub root: PPtr<Node<K, V>>,
    /// Entries.
    pub len: u64,
}

impl<K, V> Clone for PBTreeMap<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for PBTreeMap<K, V> {}
impl<K, V> PartialEq for PBTreeMap<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.meta == other.meta
    }
}
impl<K, V> Eq for PBTreeMap<K, V> {}
impl<K, V> Default for PBTreeMap<K, V> {
    fn default() -> Self {
        Self::null()
    }
}
impl<K, V> fmt::Debug for PBTreeMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PBTreeMap({:#x})", self.meta.offset())
    }
}

impl<K, V> PBTreeMap<K, V> {
    /// The null handle: no map.
    pub const fn null() -> Self {
        PBTreeMap { meta: PPtr::null() }
    }

    /// Whether this is the null handle.
    pub fn is_null(self) -> bool {
        self.meta.is_null()
    }

    /// The pointer to the map's metadata.
    pub fn as_ptr(self) -> PPtr<BTreeMeta<K, V>> {
        self.meta
    }
}

impl<K: Persistent + Copy + Ord, V: Persistent + Copy> PBTreeMap<K, V> {
    /// Allocates an empty map.
    pub fn new<R: Persistent>(tx: &mut Tx<'_, R>) -> Result<Self> {
        let meta = tx.alloc(BTreeMeta {
            root: PPtr::null(),
            len: 0,
        })?;
        Ok(PBTreeMap { meta })
    }

    fn meta(self, r: &impl PoolRead) -> Result<BTreeMeta<K, V>> {
        Ok(*r.get(self.meta)?)
    }

    /// The number of entries.
    pub fn len(self, r: &impl PoolRead) -> Result<u64> {
        Ok(self.meta(r)?.len)
    }

    /// Whether the map is empty.
    pub fn is_empty(self, r: &impl PoolRead) -> Result<bool> {
        Ok(self.len(r)? == 0)
    }

    /// The number of levels: 0 for an empty map, 1 for a root that is a leaf.
    pub fn height(self, r: &impl PoolRead) -> Result<u32> {
        let mut p = self.meta(r)?.root;
        let mut height = 0;
        while !p.is_null() {
            height += 1;
            if height as usize > MAX_DEPTH {
                return Err(Inconsistency::BTreeTooDeep.into());
            }
            p = load(r, p)?.children[0];
        }
        Ok(height)
    }

    /// The node holding `key` (its pointer, and the node in place) and its index there.
    #[allow(clippy::type_complexity)]
    fn locate<'r>(
        self,
        r: &'r impl PoolRead,
        key: &K,
    ) -> Result<Option<(PPtr<Node<K, V>>, &'r Node<K, V>, usize)>> {
        let mut p = self.meta(r)?.root;
        for _ in 0..MAX_DEPTH {
            if p.is_null() {
                return Ok(None);
            }
            let node = load(r, p)?;
            match node.find(key) {
                Ok(i) => return Ok(Some((p, node, i))),
                Err(_) if node.is_leaf() => return Ok(None),
                Err(i) => p = node.children[i],
            }
        }
        Err(Inconsistency::BTreeTooDeep.into())
    }

    /// The value of `key`, in place.
    pub fn get<'r>(self, r: &'r impl PoolRead, key: &K) -> Result<Option<&'r V>> {
        Ok(self.get_key_value(r, key)?.map(|(_, v)| v))
    }

    /// The key and value of `key`, in place.
    pub fn get_key_value<'r>(
        self,
        r: &'r impl PoolRead,
        key: &K,
    ) -> Result<Option<(&'r K, &'r V)>> {
        Ok(self
            .locate(r, key)?
            .map(|(_, node, i)| (&node.keys[i], &node.values[i])))
    }

    /// Whether the map holds `key`.
    pub fn contains_key(self, r: &impl PoolRead, key: &K) -> Result<bool> {
        Ok(self.locate(r, key)?.is_some())
    }

    /// The value of `key`, mutably, after logging its node (one fence).
    pub fn get_mut<'t, R: Persistent>(
        self,
        tx: &'t mut Tx<'_, R>,
        key: &K,
    ) -> Result<Option<&'t mut V>> {
        match self.locate(tx, key)? {
            Some((p, _, i)) => Ok(Some(&mut tx.get_mut(p)?.values[i])),
            None => Ok(None),
        }
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert<R: Persistent>(self, tx: &mut Tx<'_, R>, key: K, value: V) -> Result<Option<V>> {
        if let Some((p, _, i)) = self.locate(tx, &key)? {
            let node = tx.get_mut(p)?;
            return Ok(Some(core::mem::replace(&mut node.values[i], value)));
        }
        let meta = self.meta(tx)?;
        let mut root = meta.root;
        if root.is_null() {
            let mut leaf = Node::empty();
            leaf.insert_key(0, key, value);
            leaf.len = 1;
            root = tx.alloc(leaf)?;
        } else {
            if load(tx, root)?.n() == MAX_KEYS {
                let mut top = Node::empty();
                top.children[0] = root;
                root = tx.alloc(top)?;
                ops::split_child(tx, root, 0)?;
            }
            ops::insert_nonfull(tx, root, key, value)?;
        }
        tx.write(
            self.meta,
            BTreeMeta {
                root,
                len: meta.len.saturating_add(1),
            },
        )?;
        Ok(None)
    }

    /// Removes `key`; returns its value.
    pub fn remove<R: Persistent>(self, tx: &mut Tx<'_, R>, key: &K) -> Result<Option<V>> {
        Ok(self.remove_entry(tx, key)?.map(|(_, v)| v))
    }

    /// Removes `key`; returns the key and value it held.
    pub fn remove_entry<R: Persistent>(
        self,
        tx: &mut Tx<'_, R>,
        key: &K,
    ) -> Result<Option<(K, V)>> {
        let Some((_, node, i)) = self.locate(tx, key)? else {
            return Ok(None);
        };
        let stored = node.keys[i];
        let meta = self.meta(tx)?;
        let value = ops::delete(tx, meta.root, *key)?;
        let top = *load(tx, meta.root)?;
        let mut root = meta.root;
        if top.n() == 0 {
            // The root lost its last key: its only child (or nothing) becomes the root.
            root = top.children[0];
            tx.free(meta.root)?;
        }
        tx.write(
            self.meta,
            BTreeMeta {
                root,
                len: meta.len.saturating_sub(1),
            },
        )?;
        Ok(Some((stored, value)))
    }

    /// The entries whose keys lie in `range`, in increasing order, in place.
    pub fn range<'r, A: PoolRead>(
        self,
        r: &'r A,
        range: impl RangeBounds<K>,
    ) -> Range<'r, A, K, V> {
        Range::new(r, self.meta(r).map(|m| (m.root, m.len)), range)
    }

    /// Every entry, in increasing key order, in place.
    pub fn iter<'r, A: PoolRead>(self, r: &'r A) -> Range<'r, A, K, V> {
        self.range(r, ..)
    }

    /// The keys, in increasing order.
    pub fn keys<'r, A: PoolRead>(self, r: &'r A) -> impl Iterator<Item = Result<&'r K>> + 'r
    where
        K: 'r,
        V: 'r,
    {
        self.iter(r).map(|e| e.map(|(k, _)| k))
    }

    /// The values, in increasing order of their keys.
    pub fn values<'r, A: PoolRead>(self, r: &'r A) -> impl Iterator<Item = Result<&'r V>> + 'r
    where
        K: 'r,
        V: 'r,
    {
        self.iter(r).map(|e| e.map(|(_, v)| v))
    }

    /// The entry with the smallest key.
    pub fn first_key_value(self, r: &impl PoolRead) -> Result<Option<(&K, &V)>> {
        self.edge(r, |_| 0, |_| 0)
    }

    /// The entry with the largest key.
    pub fn last_key_value(self, r: &impl PoolRead) -> Result<Option<(&K, &V)>> {
        self.edge(r, |n| n, |n| n - 1)
    }

    /// Follows child `child(len)` down to a leaf and returns its key `key(len)`.
    fn edge(
        self,
        r: &impl PoolRead,
        child: impl Fn(usize) -> usize,
        key: impl Fn(usize) -> usize,
    ) -> Result<Option<(&K, &V)>> {
        let mut p = self.meta(r)?.root;
        if p.is_null() {
            return Ok(None);
        }
        for _ in 0..MAX_DEPTH {
            let node = load(r, p)?;
            if node.is_leaf() {
                return match node.n() {
                    0 => Err(Inconsistency::BTreeEmptyLeaf.into()),
                    n => Ok(Some((&node.keys[key(n)], &node.values[key(n)]))),
                };
            }
            p = node.children[child(node.n())];
        }
        Err(Inconsistency::BTreeTooDeep.into())
    }

    /// Removes every entry.
    pub fn clear<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        let meta = self.meta(tx)?;
        self.free_nodes(tx, &meta)?;
        tx.write(
            self.meta,
            BTreeMeta {
                root: PPtr::null(),
                len: 0,
            },
        )?;
        Ok(())
    }

    fn free_nodes<R: Persistent>(self, tx: &mut Tx<'_, R>, meta: &BTreeMeta<K, V>) -> Result<()> {
        let mut stack = Vec::new();
        if !meta.root.is_null() {
            stack.push(meta.root);
        }
        let mut freed = 0u64;
        while let Some(p) = stack.pop() {
            let node = load(tx, p)?;
            if !node.is_leaf() {
                stack.extend_from_slice(&node.children[..=node.n()]);
            }
            tx.free(p)?;
            freed += 1;
            if freed > meta.len.saturating_add(1) {
                return Err(Inconsistency::BTreeTooManyNodes.into());
            }
        }
        Ok(())
    }

    /// Frees the map: its nodes and its metadata. The handle is dangling afterwards.
    pub fn destroy<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        let meta = self.meta(tx)?;
        self.free_nodes(tx, &meta)?;
        Ok(tx.free(self.meta)?)
    }

    /// Checks every invariant: keys strictly increasing in order across the whole tree, every
    /// node but the root holding between [`MIN_KEYS`] and [`MAX_KEYS`] keys (the root at least
    /// one), all leaves at the same depth, slots past a node's length zero, and the length equal
    /// to the number of entries.
    pub fn verify(self, r: &impl PoolRead) -> Result<()> {
        let meta = self.meta(r)?;
        let mut walk = Verify {
            leaf_depth: None,
            last: None,
            found: 0,
            limit: meta.len,
        };
        if !meta.root.is_null() {
            walk.node(r, meta.root, 0, true)?;
        }
        if walk.found != meta.len {
            return Err(Inconsistency::BTreeCountMismatch {
                count: meta.len,
                found: walk.found,
            }
            .into());
        }
        Ok(())
    }
}

/// The state of [`PBTreeMap::verify`]'s walk.
struct Verify<K> {
    leaf_depth: Option<usize>,
    last: Option<K>,
    found: u64,
    limit: u64,
}

impl<K: Persistent + Copy + Ord> Verify<K> {
    fn key(&mut self, node: u64, key: K) -> Result<()> {
        if self.last.is_some_and(|last| last >= key) {
            return Err(Inconsistency::BTreeKeysOutOfOrder { node }.into());
        }
        self.last = Some(key);
        self.found += 1;
        if self.found > self.limit {
            return Err(Inconsistency::BTreeCountMismatch {
                count: self.limit,
                found: self.found,
            }
            .into());
        }
        Ok(())
    }

    fn node<V: Persistent + Copy>(
        &mut self,
        r: &impl PoolRead,
        p: PPtr<Node<K, V>>,
        depth: usize,
        is_root: bool,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(Inconsistency::BTreeTooDeep.into());
        }
        let node = load(r, p)?;
        let n = node.n();
        let at = p.offset();
        if n < if is_root { 1 } else { MIN_KEYS } {
            return Err(Inconsistency::BTreeUnderfull {
                node: at,
                depth: depth as u64,
                keys: n as u64,
            }
            .into());
        }
        if !node.keys[n..].iter().all(is_zero) || !node.values[n..].iter().all(is_zero) {
            return Err(Inconsistency::BTreeStaleSlots {
                node: at,
                keys: n as u64,
            }
            .into());
        }
        if node.is_leaf() {
            if node.children.iter().any(|c| !c.is_null()) {
                return Err(Inconsistency::BTreeLeafWithChild { node: at }.into());
            }
            match self.leaf_depth {
                None => self.leaf_depth = Some(depth),
                Some(d) if d != depth => {
                    return Err(Inconsistency::BTreeUnbalanced {
                        first: d as u64,
                        other: depth as u64,
                    }
                    .into())
                }
                Some(_) => {}
            }
            for &key in &node.keys[..n] {
                self.key(at, key)?;
            }
            return Ok(());
        }
        if node.children[n + 1..].iter().any(|c| !c.is_null()) {
            return Err(Inconsistency::BTreeChildrenPastEnd {
                node: at,
                children: n as u64 + 1,
            }
            .into());
        }
        for i in 0..=n {
            if node.children[i].is_null() {
                return Err(Inconsistency::BTreeNullChild {
                    node: at,
                    index: i as u64,
                }
                .into());
            }
            self.node(r, node.children[i], depth + 1, false)?;
            if i < n {
                self.key(at, node.keys[i])?;
            }
        }
        Ok(())
    }
}

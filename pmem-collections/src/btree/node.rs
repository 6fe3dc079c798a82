//! A B-tree node and the in-DRAM edits the tree's algorithms make to it.

use pmem_core::{bytes_of, zeroed, PPtr, Persistent, PoolRead};

use crate::{Inconsistency, Result};

/// Most children of a node.
pub const ORDER: usize = 8;
/// Most keys of a node.
pub const MAX_KEYS: usize = ORDER - 1;
/// Minimum degree: a node other than the root has at least `T - 1` keys and `T` children.
pub(super) const T: usize = ORDER / 2;
/// Fewest keys of a node other than the root.
pub const MIN_KEYS: usize = T - 1;
/// Deeper than any B-tree of order 8 that fits in a 64-bit address space: a walk deeper than
/// this has met a cycle.
pub(super) const MAX_DEPTH: usize = 64;

/// A node: `len` keys in increasing order with their values, and `len + 1` children unless it
/// is a leaf (a node whose first child is null). Slots past `len` are zero. Children come first
/// so that padding can only arise between the keys and the values.
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
/// let root = pool.read(|r| *r.get(r.get(map.as_ptr()).unwrap().root).unwrap())?;
/// assert!(root.len >= 1 && root.len <= pmem_collections::btree::MAX_KEYS as u64);
/// assert!(!root.children[0].is_null(), "20 keys need more than one node");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Persistent, Clone, Copy, Debug)]
#[repr(C)]
pub struct Node<K, V> {
    /// `children[i]` holds the keys between `keys[i - 1]` and `keys[i]`.
    pub children: [PPtr<Node<K, V>>; ORDER],
    /// Number of keys.
    pub len: u64,
    /// The keys, increasing.
    pub keys: [K; MAX_KEYS],
    /// The value of each key.
    pub values: [V; MAX_KEYS],
}

pub(super) fn is_zero<X: Persistent>(x: &X) -> bool {
    bytes_of(x).iter().all(|&b| b == 0)
}

impl<K: Persistent + Copy + Ord, V: Persistent + Copy> Node<K, V> {
    pub(super) fn empty() -> Self {
        zeroed()
    }

    pub(super) fn n(&self) -> usize {
        self.len as usize
    }

    pub(super) fn is_leaf(&self) -> bool {
        self.children[0].is_null()
    }

    /// `Ok(i)` if `keys[i] == key`, else `Err(i)` with `i` the child to descend into.
    pub(super) fn find(&self, key: &K) -> std::result::Result<usize, usize> {
        self.keys[..self.n()].binary_search(key)
    }

    /// Inserts a key at `i`, shifting the later keys right. Leaves `len` alone.
    pub(super) fn insert_key(&mut self, i: usize, key: K, value: V) {
        let n = self.n();
        self.keys.copy_within(i..n, i + 1);
        self.values.copy_within(i..n, i + 1);
        self.keys[i] = key;
        self.values[i] = value;
    }

    /// Inserts a child at `j`, shifting the later children right. Leaves `len` alone.
    pub(super) fn insert_child(&mut self, j: usize, child: PPtr<Node<K, V>>) {
        let m = self.n() + 1;
        self.children.copy_within(j..m, j + 1);
        self.children[j] = child;
    }

    /// Removes the key at `i`, shifting the later keys left. Leaves `len` alone.
    pub(super) fn remove_key(&mut self, i: usize) -> (K, V) {
        let n = self.n();
        let removed = (self.keys[i], self.values[i]);
        self.keys.copy_within(i + 1..n, i);
        self.values.copy_within(i + 1..n, i);
        self.keys[n - 1] = zeroed();
        self.values[n - 1] = zeroed();
        removed
    }

    /// Removes the child at `j`, shifting the later children left. Leaves `len` alone.
    pub(super) fn remove_child(&mut self, j: usize) -> PPtr<Node<K, V>> {
        let m = self.n() + 1;
        let removed = self.children[j];
        self.children.copy_within(j + 1..m, j);
        self.children[m - 1] = PPtr::null();
        removed
    }
}

/// The node at `p`, in place, checked to claim no more than [`MAX_KEYS`] keys.
pub(super) fn load<K: Persistent, V: Persistent>(
    r: &impl PoolRead,
    p: PPtr<Node<K, V>>,
) -> Result<&Node<K, V>> {
    let node = r.get(p)?;
    if node.len as usize > MAX_KEYS {
        return Err(Inconsistency::BTreeNodeOverfull {
            node: p.offset(),
            keys: node.len,
        }
        .into());
    }
    Ok(node)
}

//! A persistent B-tree map from `u64` to `u64`, of order [`ORDER`] (at most 8 children and 7
//! keys per node).
//!
//! The classic algorithms (Cormen et al., chapter 18): insertion splits full nodes on the way
//! down, and removal makes sure every node it descends into has more than the minimum number of
//! keys, by borrowing from a sibling or merging with one, so it never has to walk back up. Every
//! node holds at least [`MIN_KEYS`] keys except the root, and all leaves are at the same depth.
//!
//! Nodes are read into DRAM, changed there, and written back whole with [`Tx::write`], which logs
//! the node's old bytes first (nothing for a node this transaction allocated). Slots past a
//! node's length are kept zero, so no stale pointer ever lingers in a node.
//!
//! ```
//! use pmem_core::{Persistent, Pool};
//! use pmem_examples::transaction;
//! use pmem_examples::btree::PBTreeMap;
//!
//! #[derive(Persistent)]
//! #[repr(C)]
//! struct Root { map: PBTreeMap }
//!
//! let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
//! transaction(&pool, |tx| {
//!     let map = PBTreeMap::create(tx)?;
//!     tx.root_mut().set_map(map)?;
//!     for k in [5, 3, 9, 1] {
//!         map.insert(tx, k, k * 10)?;
//!     }
//!     Ok(())
//! })?;
//! let map = pool.read(|r| r.root().map)?;
//! let entries = pool.read(|r| map.iter(r).collect::<Result<Vec<_>, _>>())??;
//! assert_eq!(entries, [(1, 10), (3, 30), (5, 50), (9, 90)]);
//! # Ok::<(), pmem_examples::Error>(())
//! ```

use pmem_core::{PPtr, Persistent, Tx};

use crate::{Inconsistency, PoolRead, Result};

/// Most children of a node.
pub const ORDER: usize = 8;
/// Most keys of a node.
pub const MAX_KEYS: usize = ORDER - 1;
/// Minimum degree: a node other than the root has at least `T - 1` keys and `T` children.
const T: usize = ORDER / 2;
/// Fewest keys of a node other than the root.
pub const MIN_KEYS: usize = T - 1;
/// Deeper than any B-tree of order 8 that fits in a 64-bit address space: a walk deeper than
/// this has met a cycle.
const MAX_DEPTH: usize = 64;

/// A B-tree map in a pool: a handle (a persistent pointer to its metadata) that can be stored in
/// any persistent struct. The null handle is no map; [`create`](PBTreeMap::create) makes one.
#[derive(Persistent, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(transparent)]
pub struct PBTreeMap {
    meta: PPtr<BTreeMeta>,
}

/// The map's metadata.
#[derive(Persistent, Debug, Clone, Copy)]
#[repr(C)]
pub struct BTreeMeta {
    /// The root node; null when the map is empty.
    pub root: PPtr<Node>,
    /// Number of entries.
    pub count: u64,
}

/// A node: `len` keys in increasing order with their values, and `len + 1` children unless it is
/// a leaf (a node whose first child is null). Slots past `len` are zero.
#[derive(Persistent, Debug, Clone, Copy)]
#[repr(C)]
pub struct Node {
    /// Number of keys.
    pub len: u64,
    /// The keys, increasing.
    pub keys: [u64; MAX_KEYS],
    /// The value of each key.
    pub values: [u64; MAX_KEYS],
    /// `children[i]` holds the keys between `keys[i - 1]` and `keys[i]`.
    pub children: [PPtr<Node>; ORDER],
}

impl Node {
    fn empty() -> Node {
        Node {
            len: 0,
            keys: [0; MAX_KEYS],
            values: [0; MAX_KEYS],
            children: [PPtr::null(); ORDER],
        }
    }

    fn n(&self) -> usize {
        self.len as usize
    }

    fn is_leaf(&self) -> bool {
        self.children[0].is_null()
    }

    /// `Ok(i)` if `keys[i] == key`, else `Err(i)` with `i` the child to descend into.
    fn find(&self, key: u64) -> std::result::Result<usize, usize> {
        self.keys[..self.n()].binary_search(&key)
    }

    /// Inserts a key at `i`, shifting the later keys right. Leaves `len` alone.
    fn insert_key(&mut self, i: usize, key: u64, value: u64) {
        let n = self.n();
        self.keys.copy_within(i..n, i + 1);
        self.values.copy_within(i..n, i + 1);
        self.keys[i] = key;
        self.values[i] = value;
    }

    /// Inserts a child at `j`, shifting the later children right. Leaves `len` alone.
    fn insert_child(&mut self, j: usize, child: PPtr<Node>) {
        let m = self.n() + 1;
        self.children.copy_within(j..m, j + 1);
        self.children[j] = child;
    }

    /// Removes the key at `i`, shifting the later keys left. Leaves `len` alone.
    fn remove_key(&mut self, i: usize) -> (u64, u64) {
        let n = self.n();
        let removed = (self.keys[i], self.values[i]);
        self.keys.copy_within(i + 1..n, i);
        self.values.copy_within(i + 1..n, i);
        self.keys[n - 1] = 0;
        self.values[n - 1] = 0;
        removed
    }

    /// Removes the child at `j`, shifting the later children left. Leaves `len` alone.
    fn remove_child(&mut self, j: usize) -> PPtr<Node> {
        let m = self.n() + 1;
        let removed = self.children[j];
        self.children.copy_within(j + 1..m, j);
        self.children[m - 1] = PPtr::null();
        removed
    }
}

fn load(r: &impl PoolRead, p: PPtr<Node>) -> Result<Node> {
    let node = *r.get(p)?;
    if node.n() > MAX_KEYS {
        return Err(Inconsistency::BTreeNodeOverfull {
            node: p.offset(),
            keys: node.len,
        }
        .into());
    }
    Ok(node)
}

fn store<R: Persistent>(tx: &mut Tx<'_, R>, p: PPtr<Node>, node: Node) -> Result<()> {
    Ok(tx.write(p, node)?)
}

impl PBTreeMap {
    /// The null handle: no map.
    pub const fn null() -> Self {
        PBTreeMap { meta: PPtr::null() }
    }

    /// Whether this is the null handle.
    pub fn is_null(self) -> bool {
        self.meta.is_null()
    }

    /// Allocates an empty map.
    pub fn create<R: Persistent>(tx: &mut Tx<'_, R>) -> Result<Self> {
        let meta = tx.alloc(BTreeMeta {
            root: PPtr::null(),
            count: 0,
        })?;
        Ok(PBTreeMap { meta })
    }

    fn meta(self, r: &impl PoolRead) -> Result<BTreeMeta> {
        Ok(*r.get(self.meta)?)
    }

    /// Number of entries.
    pub fn len(self, r: &impl PoolRead) -> Result<u64> {
        Ok(self.meta(r)?.count)
    }

    /// Whether the map is empty.
    pub fn is_empty(self, r: &impl PoolRead) -> Result<bool> {
        Ok(self.len(r)? == 0)
    }

    /// Number of levels: 0 for an empty map, 1 for a root that is a leaf.
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

    /// The node holding `key`, its index there, and its value.
    fn locate(self, r: &impl PoolRead, key: u64) -> Result<Option<(PPtr<Node>, usize, u64)>> {
        let mut p = self.meta(r)?.root;
        for _ in 0..MAX_DEPTH {
            if p.is_null() {
                return Ok(None);
            }
            let node = load(r, p)?;
            match node.find(key) {
                Ok(i) => return Ok(Some((p, i, node.values[i]))),
                Err(_) if node.is_leaf() => return Ok(None),
                Err(i) => p = node.children[i],
            }
        }
        Err(Inconsistency::BTreeTooDeep.into())
    }

    /// The value of `key`.
    pub fn get(self, r: &impl PoolRead, key: u64) -> Result<Option<u64>> {
        Ok(self.locate(r, key)?.map(|(_, _, value)| value))
    }

    /// Whether the map holds `key`.
    pub fn contains_key(self, r: &impl PoolRead, key: u64) -> Result<bool> {
        Ok(self.locate(r, key)?.is_some())
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert<R: Persistent>(
        self,
        tx: &mut Tx<'_, R>,
        key: u64,
        value: u64,
    ) -> Result<Option<u64>> {
        if let Some((p, i, old)) = self.locate(tx, key)? {
            if old != value {
                tx.edit(p)?.values_mut().set_at(i, value)?;
            }
            return Ok(Some(old));
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
                split_child(tx, root, 0)?;
            }
            insert_nonfull(tx, root, key, value)?;
        }
        tx.write(
            self.meta,
            BTreeMeta {
                root,
                count: meta.count + 1,
            },
        )?;
        Ok(None)
    }

    /// Removes `key`; returns its value.
    pub fn remove<R: Persistent>(self, tx: &mut Tx<'_, R>, key: u64) -> Result<Option<u64>> {
        if self.locate(tx, key)?.is_none() {
            return Ok(None);
        }
        let meta = self.meta(tx)?;
        let value = delete(tx, meta.root, key)?;
        let top = load(tx, meta.root)?;
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
                count: meta.count - 1,
            },
        )?;
        Ok(Some(value))
    }

    /// The entries in increasing key order.
    pub fn iter<'r, A: PoolRead>(self, r: &'r A) -> Iter<'r, A> {
        let mut iter = Iter {
            r,
            stack: Vec::new(),
            error: None,
        };
        match self.meta(r) {
            Ok(meta) if !meta.root.is_null() => iter.descend_left(meta.root),
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
        .unwrap_or_else(|e| iter.fail_later(e));
        iter
    }

    /// The entries in increasing key order, collected.
    pub fn entries(self, r: &impl PoolRead) -> Result<Vec<(u64, u64)>> {
        self.iter(r).collect()
    }

    /// Removes every entry and frees the map.
    pub fn destroy<R: Persistent>(self, tx: &mut Tx<'_, R>) -> Result<()> {
        let meta = self.meta(tx)?;
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
            if freed > meta.count + 1 {
                return Err(Inconsistency::BTreeTooManyNodes.into());
            }
        }
        Ok(tx.free(self.meta)?)
    }

    /// Checks the B-tree's invariants: keys strictly increasing in order across the whole tree,
    /// every node but the root holding between [`MIN_KEYS`] and [`MAX_KEYS`] keys (the root at
    /// least one), all leaves at the same depth, slots past a node's length zero, and the count
    /// equal to the number of entries. Returns the entries in order.
    pub fn verify(self, r: &impl PoolRead) -> Result<Vec<(u64, u64)>> {
        let meta = self.meta(r)?;
        let mut out = Vec::new();
        if !meta.root.is_null() {
            let mut leaf_depth = None;
            verify_node(r, meta.root, 0, true, &mut leaf_depth, &mut out)?;
        }
        if let Some(w) = out.windows(2).find(|w| w[0].0 >= w[1].0) {
            return Err(Inconsistency::BTreeKeysOutOfOrder {
                first: w[0].0,
                then: w[1].0,
            }
            .into());
        }
        if out.len() as u64 != meta.count {
            return Err(Inconsistency::BTreeCountMismatch {
                count: meta.count,
                found: out.len() as u64,
            }
            .into());
        }
        Ok(out)
    }
}

fn verify_node(
    r: &impl PoolRead,
    p: PPtr<Node>,
    depth: usize,
    is_root: bool,
    leaf_depth: &mut Option<usize>,
    out: &mut Vec<(u64, u64)>,
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
    if node.keys[n..]
        .iter()
        .chain(&node.values[n..])
        .any(|&x| x != 0)
    {
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
        match *leaf_depth {
            None => *leaf_depth = Some(depth),
            Some(d) if d != depth => {
                return Err(Inconsistency::BTreeUnbalanced {
                    first: d as u64,
                    other: depth as u64,
                }
                .into())
            }
            Some(_) => {}
        }
        out.extend((0..n).map(|i| (node.keys[i], node.values[i])));
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
        verify_node(r, node.children[i], depth + 1, false, leaf_depth, out)?;
        if i < n {
            out.push((node.keys[i], node.values[i]));
        }
    }
    Ok(())
}

/// Splits the full child `i` of `parent` in two around its median key, which moves up into
/// `parent` (which must not be full).
fn split_child<R: Persistent>(tx: &mut Tx<'_, R>, parent: PPtr<Node>, i: usize) -> Result<()> {
    let mut x = load(tx, parent)?;
    let yp = x.children[i];
    let mut y = load(tx, yp)?;
    let mut z = Node::empty();
    z.keys[..T - 1].copy_from_slice(&y.keys[T..]);
    z.values[..T - 1].copy_from_slice(&y.values[T..]);
    z.children[..T].copy_from_slice(&y.children[T..]);
    z.len = (T - 1) as u64;
    let (mk, mv) = (y.keys[T - 1], y.values[T - 1]);
    y.keys[T - 1..].fill(0);
    y.values[T - 1..].fill(0);
    y.children[T..].fill(PPtr::null());
    y.len = (T - 1) as u64;
    let zp = tx.alloc(z)?;
    x.insert_child(i + 1, zp);
    x.insert_key(i, mk, mv);
    x.len += 1;
    store(tx, yp, y)?;
    store(tx, parent, x)
}

/// Inserts a key that is not in the tree into the subtree at `p`, whose root is not full.
fn insert_nonfull<R: Persistent>(
    tx: &mut Tx<'_, R>,
    mut p: PPtr<Node>,
    key: u64,
    value: u64,
) -> Result<()> {
    for _ in 0..MAX_DEPTH {
        let mut x = load(tx, p)?;
        let i = match x.find(key) {
            Ok(_) => return Err(Inconsistency::BTreeKeyPresent.into()),
            Err(i) => i,
        };
        if x.is_leaf() {
            x.insert_key(i, key, value);
            x.len += 1;
            return store(tx, p, x);
        }
        let child = x.children[i];
        if load(tx, child)?.n() == MAX_KEYS {
            split_child(tx, p, i)?;
            let x = load(tx, p)?;
            p = if key > x.keys[i] {
                x.children[i + 1]
            } else {
                x.children[i]
            };
        } else {
            p = child;
        }
    }
    Err(Inconsistency::BTreeTooDeep.into())
}

/// Moves a key from the left sibling of child `ci` of `parent` through the parent into it.
fn borrow_from_left<R: Persistent>(
    tx: &mut Tx<'_, R>,
    parent: PPtr<Node>,
    ci: usize,
) -> Result<()> {
    let mut x = load(tx, parent)?;
    let (lp, cp) = (x.children[ci - 1], x.children[ci]);
    let (mut l, mut c) = (load(tx, lp)?, load(tx, cp)?);
    let leaf = c.is_leaf();
    let ln = l.n();
    if !leaf {
        let moved = l.remove_child(ln);
        c.insert_child(0, moved);
    }
    c.insert_key(0, x.keys[ci - 1], x.values[ci - 1]);
    c.len += 1;
    let (k, v) = l.remove_key(ln - 1);
    l.len -= 1;
    x.keys[ci - 1] = k;
    x.values[ci - 1] = v;
    store(tx, lp, l)?;
    store(tx, cp, c)?;
    store(tx, parent, x)
}

/// Moves a key from the right sibling of child `ci` of `parent` through the parent into it.
fn borrow_from_right<R: Persistent>(
    tx: &mut Tx<'_, R>,
    parent: PPtr<Node>,
    ci: usize,
) -> Result<()> {
    let mut x = load(tx, parent)?;
    let (cp, rp) = (x.children[ci], x.children[ci + 1]);
    let (mut c, mut rn) = (load(tx, cp)?, load(tx, rp)?);
    let leaf = c.is_leaf();
    let cn = c.n();
    c.keys[cn] = x.keys[ci];
    c.values[cn] = x.values[ci];
    if !leaf {
        c.children[cn + 1] = rn.remove_child(0);
    }
    c.len += 1;
    let (k, v) = rn.remove_key(0);
    rn.len -= 1;
    x.keys[ci] = k;
    x.values[ci] = v;
    store(tx, rp, rn)?;
    store(tx, cp, c)?;
    store(tx, parent, x)
}

/// Merges child `i + 1` of `parent` and the key between them into child `i`, and frees child
/// `i + 1`. Both children have [`MIN_KEYS`] keys.
fn merge<R: Persistent>(tx: &mut Tx<'_, R>, parent: PPtr<Node>, i: usize) -> Result<()> {
    let mut x = load(tx, parent)?;
    let (lp, rp) = (x.children[i], x.children[i + 1]);
    let (mut l, rn) = (load(tx, lp)?, load(tx, rp)?);
    let (ln, rlen) = (l.n(), rn.n());
    if ln + 1 + rlen > MAX_KEYS {
        return Err(Inconsistency::BTreeMergeOverflow.into());
    }
    l.keys[ln] = x.keys[i];
    l.values[ln] = x.values[i];
    l.keys[ln + 1..ln + 1 + rlen].copy_from_slice(&rn.keys[..rlen]);
    l.values[ln + 1..ln + 1 + rlen].copy_from_slice(&rn.values[..rlen]);
    l.children[ln + 1..ln + 2 + rlen].copy_from_slice(&rn.children[..=rlen]);
    l.len = (ln + 1 + rlen) as u64;
    x.remove_key(i);
    x.remove_child(i + 1);
    x.len -= 1;
    tx.free(rp)?;
    store(tx, lp, l)?;
    store(tx, parent, x)
}

/// The last entry of the subtree at `p`.
fn max_entry(r: &impl PoolRead, mut p: PPtr<Node>) -> Result<(u64, u64)> {
    for _ in 0..MAX_DEPTH {
        let node = load(r, p)?;
        if node.is_leaf() {
            let n = node.n();
            return match n {
                0 => Err(Inconsistency::BTreeEmptyLeaf.into()),
                _ => Ok((node.keys[n - 1], node.values[n - 1])),
            };
        }
        p = node.children[node.n()];
    }
    Err(Inconsistency::BTreeTooDeep.into())
}

/// The first entry of the subtree at `p`.
fn min_entry(r: &impl PoolRead, mut p: PPtr<Node>) -> Result<(u64, u64)> {
    for _ in 0..MAX_DEPTH {
        let node = load(r, p)?;
        if node.is_leaf() {
            return match node.n() {
                0 => Err(Inconsistency::BTreeEmptyLeaf.into()),
                _ => Ok((node.keys[0], node.values[0])),
            };
        }
        p = node.children[0];
    }
    Err(Inconsistency::BTreeTooDeep.into())
}

/// Removes `key`, which is in the subtree at `p`, and returns its value. `p` is the root or has
/// more than [`MIN_KEYS`] keys; so does every node this descends into, after it borrows or
/// merges.
fn delete<R: Persistent>(tx: &mut Tx<'_, R>, mut p: PPtr<Node>, mut key: u64) -> Result<u64> {
    let mut removed = None;
    for _ in 0..MAX_DEPTH {
        let mut x = load(tx, p)?;
        match x.find(key) {
            Ok(i) if x.is_leaf() => {
                let (_, v) = x.remove_key(i);
                x.len -= 1;
                store(tx, p, x)?;
                return Ok(removed.unwrap_or(v));
            }
            Ok(i) => {
                let (yp, zp) = (x.children[i], x.children[i + 1]);
                let value = x.values[i];
                if load(tx, yp)?.n() > MIN_KEYS {
                    // Replace the key by its predecessor, then remove that from the left child.
                    let (pk, pv) = max_entry(tx, yp)?;
                    x.keys[i] = pk;
                    x.values[i] = pv;
                    store(tx, p, x)?;
                    removed.get_or_insert(value);
                    (p, key) = (yp, pk);
                } else if load(tx, zp)?.n() > MIN_KEYS {
                    let (sk, sv) = min_entry(tx, zp)?;
                    x.keys[i] = sk;
                    x.values[i] = sv;
                    store(tx, p, x)?;
                    removed.get_or_insert(value);
                    (p, key) = (zp, sk);
                } else {
                    // Both children are minimal: merge them around the key and go on there.
                    merge(tx, p, i)?;
                    p = yp;
                }
            }
            Err(_) if x.is_leaf() => return Err(Inconsistency::BTreeKeyMissing.into()),
            Err(i) => {
                let child = x.children[i];
                if load(tx, child)?.n() > MIN_KEYS {
                    p = child;
                } else if i > 0 && load(tx, x.children[i - 1])?.n() > MIN_KEYS {
                    borrow_from_left(tx, p, i)?;
                    p = child;
                } else if i < x.n() && load(tx, x.children[i + 1])?.n() > MIN_KEYS {
                    borrow_from_right(tx, p, i)?;
                    p = child;
                } else if i < x.n() {
                    merge(tx, p, i)?;
                    p = child;
                } else {
                    merge(tx, p, i - 1)?;
                    p = x.children[i - 1];
                }
            }
        }
    }
    Err(Inconsistency::BTreeTooDeep.into())
}

/// In-order iterator over a [`PBTreeMap`]; see [`PBTreeMap::iter`]. Yields an error (once, then
/// ends) if the tree is damaged.
#[derive(Debug)]
pub struct Iter<'r, A> {
    r: &'r A,
    /// The path from the root: each node and the index of its next key.
    stack: Vec<(Node, usize)>,
    error: Option<crate::Error>,
}

impl<A: PoolRead> Iter<'_, A> {
    fn descend_left(&mut self, mut p: PPtr<Node>) -> Result<()> {
        loop {
            if self.stack.len() > MAX_DEPTH {
                return Err(Inconsistency::BTreeTooDeep.into());
            }
            let node = load(self.r, p)?;
            let leaf = node.is_leaf();
            self.stack.push((node, 0));
            if leaf {
                return Ok(());
            }
            p = node.children[0];
        }
    }

    fn fail_later(&mut self, e: crate::Error) {
        self.stack.clear();
        self.error = Some(e);
    }
}

impl<A: PoolRead> Iterator for Iter<'_, A> {
    type Item = Result<(u64, u64)>;

    fn next(&mut self) -> Option<Result<(u64, u64)>> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        loop {
            let (node, i) = self.stack.last_mut()?;
            if *i < node.n() {
                let entry = (node.keys[*i], node.values[*i]);
                *i += 1;
                if !node.is_leaf() {
                    let child = node.children[*i];
                    if let Err(e) = self.descend_left(child) {
                        self.fail_later(e);
                    }
                }
                return Some(Ok(entry));
            }
            self.stack.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pmem_core::Pool;

    #[derive(Persistent)]
    #[repr(C)]
    struct Root {
        map: PBTreeMap,
    }

    fn pool_with_map() -> (Pool<Root>, PBTreeMap) {
        let pool = Pool::<Root>::builder().create_simulated(4 << 20).unwrap();
        let map = crate::transaction(&pool, |tx| {
            let map = PBTreeMap::create(tx)?;
            tx.root_mut().set_map(map)?;
            Ok(map)
        })
        .unwrap();
        (pool, map)
    }

    fn healthy(pool: &Pool<Root>) {
        let report = pmem_core::check::check(pool);
        assert!(
            report.is_healthy() && report.unreachable.is_empty(),
            "{report}"
        );
    }

    #[test]
    fn node_is_padding_free_and_small() {
        assert_eq!(core::mem::size_of::<Node>(), 8 + 7 * 8 * 2 + 8 * 8);
    }

    #[test]
    fn ascending_inserts_then_removals_keep_the_tree_valid() {
        let (pool, map) = pool_with_map();
        for k in 0..300u64 {
            crate::transaction(&pool, |tx| map.insert(tx, k, k + 1)).unwrap();
            if k % 50 == 0 {
                pool.read(|r| map.verify(r)).unwrap().unwrap();
            }
        }
        let entries = pool.read(|r| map.verify(r)).unwrap().unwrap();
        assert_eq!(entries, (0..300).map(|k| (k, k + 1)).collect::<Vec<_>>());
        healthy(&pool);
        // Remove from the middle outwards, checking the structure after each removal.
        let order: Vec<u64> = (0..150).flat_map(|i| [150 + i, 149 - i]).collect();
        for (n, &k) in order.iter().enumerate() {
            let v = crate::transaction(&pool, |tx| map.remove(tx, k)).unwrap();
            assert_eq!(v, Some(k + 1));
            let entries = pool
                .read(|r| map.verify(r))
                .unwrap()
                .unwrap_or_else(|e| panic!("after removing {k}: {e}"));
            assert_eq!(entries.len(), 300 - n - 1);
        }
        assert_eq!(pool.read(|r| r.root().map.len(r)).unwrap().unwrap(), 0);
        assert_eq!(
            pmem_core::check::check(&pool).live_objects,
            1,
            "only the metadata"
        );
    }

    #[test]
    fn replace_and_missing_keys() {
        let (pool, map) = pool_with_map();
        crate::transaction(&pool, |tx| {
            assert_eq!(map.remove(tx, 1)?, None);
            assert_eq!(map.insert(tx, 1, 10)?, None);
            assert_eq!(map.insert(tx, 1, 11)?, Some(10));
            assert_eq!(map.get(tx, 1)?, Some(11));
            assert_eq!(map.get(tx, 2)?, None);
            assert_eq!(map.remove(tx, 2)?, None);
            Ok(())
        })
        .unwrap();
        assert_eq!(pool.read(|r| map.entries(r)).unwrap().unwrap(), [(1, 11)]);
    }

    #[test]
    fn destroy_frees_every_node() {
        let (pool, map) = pool_with_map();
        crate::transaction(&pool, |tx| {
            for k in 0..200 {
                map.insert(tx, k * 7 % 200, k)?;
            }
            Ok(())
        })
        .unwrap();
        healthy(&pool);
        crate::transaction(&pool, |tx| {
            map.destroy(tx)?;
            Ok(tx.root_mut().set_map(PBTreeMap::null())?)
        })
        .unwrap();
        assert_eq!(pmem_core::check::check(&pool).live_objects, 0);
    }
}

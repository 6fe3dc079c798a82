//! The B-tree's changes: splitting on the way down for an insert, borrowing and merging on the
//! way down for a removal. Each reads the nodes it changes into DRAM and writes them back whole
//! (one logged range each).

use pmem_core::{zeroed, PPtr, Persistent, PoolRead, Tx};

use super::node::{load, Node, MAX_DEPTH, MAX_KEYS, MIN_KEYS, T};
use crate::{Inconsistency, Result};

fn copy<K: Persistent + Copy, V: Persistent + Copy>(
    r: &impl PoolRead,
    p: PPtr<Node<K, V>>,
) -> Result<Node<K, V>> {
    Ok(*load(r, p)?)
}

fn store<R: Persistent, K: Persistent, V: Persistent>(
    tx: &mut Tx<'_, R>,
    p: PPtr<Node<K, V>>,
    node: Node<K, V>,
) -> Result<()> {
    Ok(tx.write(p, node)?)
}

/// Splits the full child `i` of `parent` in two around its median key, which moves up into
/// `parent` (which must not be full).
pub(super) fn split_child<R: Persistent, K: Persistent + Copy + Ord, V: Persistent + Copy>(
    tx: &mut Tx<'_, R>,
    parent: PPtr<Node<K, V>>,
    i: usize,
) -> Result<()> {
    let mut x = copy(tx, parent)?;
    let yp = x.children[i];
    let mut y = copy(tx, yp)?;
    if y.n() != MAX_KEYS || x.n() >= MAX_KEYS {
        return Err(Inconsistency::BTreeMergeOverflow.into());
    }
    let mut z = Node::<K, V>::empty();
    z.keys[..T - 1].copy_from_slice(&y.keys[T..]);
    z.values[..T - 1].copy_from_slice(&y.values[T..]);
    z.children[..T].copy_from_slice(&y.children[T..]);
    z.len = (T - 1) as u64;
    let (mk, mv) = (y.keys[T - 1], y.values[T - 1]);
    y.keys[T - 1..].fill(zeroed());
    y.values[T - 1..].fill(zeroed());
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
pub(super) fn insert_nonfull<R: Persistent, K: Persistent + Copy + Ord, V: Persistent + Copy>(
    tx: &mut Tx<'_, R>,
    mut p: PPtr<Node<K, V>>,
    key: K,
    value: V,
) -> Result<()> {
    let mut x = copy(tx, p)?;
    for _ in 0..MAX_DEPTH {
        let i = match x.find(&key) {
            Ok(_) => return Err(Inconsistency::BTreeKeyPresent.into()),
            Err(i) => i,
        };
        if x.is_leaf() {
            if x.n() >= MAX_KEYS {
                return Err(Inconsistency::BTreeMergeOverflow.into());
            }
            x.insert_key(i, key, value);
            x.len += 1;
            return store(tx, p, x);
        }
        let child = x.children[i];
        let c = copy(tx, child)?;
        if c.n() == MAX_KEYS {
            split_child(tx, p, i)?;
            let parent = load(tx, p)?;
            p = if key > parent.keys[i] {
                parent.children[i + 1]
            } else {
                parent.children[i]
            };
            x = copy(tx, p)?;
        } else {
            (p, x) = (child, c);
        }
    }
    Err(Inconsistency::BTreeTooDeep.into())
}

/// Moves a key from the left sibling of child `ci` of `parent` through the parent into it.
fn borrow_from_left<R: Persistent, K: Persistent + Copy + Ord, V: Persistent + Copy>(
    tx: &mut Tx<'_, R>,
    parent: PPtr<Node<K, V>>,
    ci: usize,
) -> Result<()> {
    let mut x = copy(tx, parent)?;
    let (lp, cp) = (x.children[ci - 1], x.children[ci]);
    let (mut l, mut c) = (copy(tx, lp)?, copy(tx, cp)?);
    let ln = l.n();
    if ln == 0 || c.n() >= MAX_KEYS {
        return Err(Inconsistency::BTreeMergeOverflow.into());
    }
    if !c.is_leaf() {
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
fn borrow_from_right<R: Persistent, K: Persistent + Copy + Ord, V: Persistent + Copy>(
    tx: &mut Tx<'_, R>,
    parent: PPtr<Node<K, V>>,
    ci: usize,
) -> Result<()> {
    let mut x = copy(tx, parent)?;
    let (cp, rp) = (x.children[ci], x.children[ci + 1]);
    let (mut c, mut rn) = (copy(tx, cp)?, copy(tx, rp)?);
    let cn = c.n();
    if rn.n() == 0 || cn >= MAX_KEYS {
        return Err(Inconsistency::BTreeMergeOverflow.into());
    }
    c.keys[cn] = x.keys[ci];
    c.values[cn] = x.values[ci];
    if !c.is_leaf() {
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
fn merge<R: Persistent, K: Persistent + Copy + Ord, V: Persistent + Copy>(
    tx: &mut Tx<'_, R>,
    parent: PPtr<Node<K, V>>,
    i: usize,
) -> Result<()> {
    let mut x = copy(tx, parent)?;
    let (lp, rp) = (x.children[i], x.children[i + 1]);
    let (mut l, rn) = (copy(tx, lp)?, copy(tx, rp)?);
    let (ln, rlen) = (l.n(), rn.n());
    if ln + 1 + rlen > MAX_KEYS || x.n() == 0 {
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

/// The last (`last`) or first entry of the subtree at `p`.
fn edge_entry<K: Persistent + Copy + Ord, V: Persistent + Copy>(
    r: &impl PoolRead,
    mut p: PPtr<Node<K, V>>,
    last: bool,
) -> Result<(K, V)> {
    for _ in 0..MAX_DEPTH {
        let node = load(r, p)?;
        let n = node.n();
        if node.is_leaf() {
            if n == 0 {
                return Err(Inconsistency::BTreeEmptyLeaf.into());
            }
            let i = if last { n - 1 } else { 0 };
            return Ok((node.keys[i], node.values[i]));
        }
        p = node.children[if last { n } else { 0 }];
    }
    Err(Inconsistency::BTreeTooDeep.into())
}

/// Removes `key`, which is in the subtree at `p`, and returns its value. `p` is the root or has
/// more than [`MIN_KEYS`] keys; so does every node this descends into, after it borrows or
/// merges.
pub(super) fn delete<R: Persistent, K: Persistent + Copy + Ord, V: Persistent + Copy>(
    tx: &mut Tx<'_, R>,
    mut p: PPtr<Node<K, V>>,
    mut key: K,
) -> Result<V> {
    let mut removed = None;
    for _ in 0..MAX_DEPTH {
        let mut x = copy(tx, p)?;
        match x.find(&key) {
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
                    let (pk, pv) = edge_entry(tx, yp, true)?;
                    x.keys[i] = pk;
                    x.values[i] = pv;
                    store(tx, p, x)?;
                    removed.get_or_insert(value);
                    (p, key) = (yp, pk);
                } else if load(tx, zp)?.n() > MIN_KEYS {
                    let (sk, sv) = edge_entry(tx, zp, false)?;
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
                } else if i > 0 {
                    merge(tx, p, i - 1)?;
                    p = x.children[i - 1];
                } else {
                    return Err(Inconsistency::BTreeNullChild {
                        node: p.offset(),
                        index: 1,
                    }
                    .into());
                }
            }
        }
    }
    Err(Inconsistency::BTreeTooDeep.into())
}

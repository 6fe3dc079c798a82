//! The valid pools that hostile files start from: built through the library, read back as bytes.
//! A transaction interrupted mid-way is captured by reading the file while the transaction runs:
//! the mapping is shared, so the file then holds what a process killed at that instant leaves.

use std::path::Path;

use pmem_core::{PSlice, Pool};

use super::{Big, Node, Root};

/// A valid pool: a name and its bytes.
#[derive(Debug, Clone)]
pub struct Seed {
    /// What it holds.
    pub name: &'static str,
    /// The pool file.
    pub bytes: Vec<u8>,
    /// The [`digest`](super::case::digest) of what it holds once recovered: for an interrupted
    /// transaction, the state before it.
    pub digest: String,
}

/// Slice lengths (in words) of the objects seed: several size classes, and one large span.
const ITEM_LENS: [u64; 8] = [1, 3, 8, 20, 50, 130, 700, 5000];

/// Sets every 512th word (and the last) to `v`.
fn sprinkle(words: &mut [u64], v: u64) {
    for w in words.iter_mut().step_by(512) {
        *w = v;
    }
    if let Some(w) = words.last_mut() {
        *w = v;
    }
}

fn fresh(path: &Path, size: u64) -> Pool<Root> {
    let _ = std::fs::remove_file(path);
    Pool::<Root>::create(path, size).expect("create a seed pool")
}

fn push(tx: &mut pmem_core::Tx<'_, Root>, value: u64, items: PSlice<u64>) -> pmem_core::Result<()> {
    let next = tx.root().head;
    let node = tx.alloc(Node { value, next, items })?;
    tx.root_mut().set_head(node)?;
    let count = tx.root().count;
    tx.root_mut().set_count(count + 1)
}

/// Nodes with slices of several sizes (some freed again, leaving holes in run bitmaps), a large
/// object and a spare slice. `small` keeps to a pool of a few chunks.
fn fill_objects(pool: &Pool<Root>, small: bool) {
    let lens: &[u64] = if small { &ITEM_LENS[..4] } else { &ITEM_LENS };
    pool.transaction(|tx| {
        for (i, &len) in lens.iter().enumerate() {
            let items = tx.alloc_slice(&vec![i as u64 + 1; len as usize])?;
            push(tx, 100 + i as u64, items)?;
        }
        let big = tx.alloc_zeroed::<Big>()?;
        // Sparse contents keep the kept images small (see `sparse`).
        sprinkle(&mut tx.get_mut(big)?.words, 7);
        tx.root_mut().set_big(big)?;
        // Large in a full-size pool, so that rewriting it and the large object logs more than a
        // log slot holds.
        let spare = tx.alloc_slice_zeroed::<u64>(if small { 12 } else { 4000 })?;
        sprinkle(tx.get_slice_mut(spare)?, 9);
        tx.root_mut().set_spare(spare)
    })
    .expect("fill a seed pool");
    // Free every other node's items: runs with holes.
    pool.transaction(|tx| -> pmem_core::Result<_> {
        let mut p = tx.root().head;
        let mut i = 0;
        while !p.is_null() {
            let n = tx.get(p)?;
            let (next, items) = (n.next, n.items);
            if i % 2 == 1 {
                tx.free_slice(items)?;
                tx.edit(p)?.set_items(PSlice::null())?;
            }
            p = next;
            i += 1;
        }
        Ok(())
    })
    .expect("thin a seed pool");
}

/// Every seed, built in `dir`. `small` pools (384 KiB) are for fuzzing, the others 1 MiB.
pub fn build(dir: &Path, small: bool) -> Vec<Seed> {
    let size = if small { 384 << 10 } else { 1 << 20 };
    let path = dir.join("seed.pool");
    let mut seeds = Vec::new();

    drop(fresh(&path, size));
    take(&mut seeds, "empty", &path);

    let pool = fresh(&path, size);
    fill_objects(&pool, small);
    drop(pool);
    take(&mut seeds, "objects", &path);

    let pool = fresh(&path, size);
    let nodes = if small { 60 } else { 150 };
    pool.transaction(|tx| -> pmem_core::Result<_> {
        for i in 0..nodes {
            let items = tx.alloc_slice(&[i; 2])?;
            push(tx, i, items)?;
        }
        Ok(())
    })
    .expect("build a list");
    drop(pool);
    take(&mut seeds, "list", &path);

    // Interrupted transactions, from the objects pool.
    for big_log in [false, true] {
        let pool = fresh(&path, size);
        fill_objects(&pool, small);
        let digest = super::case::digest(&pool);
        let mut image = Vec::new();
        let _ = pool.transaction(|tx| {
            tx.root_mut().set_count(77)?;
            let items = tx.alloc_slice(&[5u64; 6])?;
            push(tx, 555, items)?;
            // Unlink and free the second node.
            let head = tx.root().head;
            let first = tx.get(head)?.next;
            let n = tx.get(first)?;
            let (next, items) = (n.next, n.items);
            tx.free_slice(items)?;
            tx.free(first)?;
            tx.edit(head)?.set_next(next)?;
            if big_log {
                // More than a log slot holds: the log extends into the heap.
                let big = tx.root().big;
                sprinkle(&mut tx.get_mut(big)?.words, 8);
                let spare = tx.root().spare;
                sprinkle(tx.get_slice_mut(spare)?, 10);
            }
            image = std::fs::read(&path).expect("read the pool mid-transaction");
            Err::<(), _>(tx.abort())
        });
        drop(pool);
        assert!(!image.is_empty(), "the interrupted transaction ran");
        let name = if big_log {
            "tx-extended-log"
        } else {
            "tx-interrupted"
        };
        seeds.push(Seed {
            name,
            bytes: image,
            digest,
        });
    }
    let _ = std::fs::remove_file(&path);
    seeds
}

fn take(seeds: &mut Vec<Seed>, name: &'static str, path: &Path) {
    let digest = super::case::digest(&Pool::<Root>::open(path).expect("open a seed pool"));
    seeds.push(Seed {
        name,
        bytes: std::fs::read(path).expect("read a seed pool"),
        digest,
    });
}

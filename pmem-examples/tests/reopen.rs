//! The structures in pool files: what one handle commits, a handle opened later on the same file
//! reads back, and goes on changing.

mod common;

use std::path::Path;

use common::{create_all, pool_is_clean, AllRoot};
use pmem_collections::{PBTreeMap, PHashMap};
use pmem_core::Pool;
use pmem_examples::cli;
use pmem_examples::cli::Map;
use pmem_examples::string_store;

const SIZE: u64 = 8 << 20;

fn fill(path: &Path) {
    let pool = Pool::<AllRoot>::create(path, SIZE).unwrap();
    create_all(&pool).unwrap();
    let (hash, tree, queue) = pool
        .read(|r| (r.root().hash, r.root().tree, r.root().queue))
        .unwrap();
    // Ten keys per transaction: every commit of a file pool syncs it.
    for batch in 0..30u64 {
        pmem_examples::transaction(&pool, |tx| {
            for k in batch * 10..batch * 10 + 10 {
                hash.insert(tx, k, k * k)?;
                tree.insert(tx, k, k + 1)?;
                queue.enqueue(tx, format!("message {k}").as_bytes())?;
            }
            Ok(())
        })
        .unwrap();
    }
}

#[test]
fn structures_survive_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("structures.pool");
    fill(&path);

    let pool = Pool::<AllRoot>::open(&path).unwrap();
    assert_eq!(pool.info().recovery, Default::default(), "closed cleanly");
    let (hash, tree, queue) = pool
        .read(|r| (r.root().hash, r.root().tree, r.root().queue))
        .unwrap();
    pool.read(|r| {
        let mut h = Map::verify(hash, r).unwrap();
        h.sort_unstable();
        assert_eq!(h, (0..300).map(|k| (k, k * k)).collect::<Vec<_>>());
        assert_eq!(
            Map::verify(tree, r).unwrap(),
            (0..300).map(|k| (k, k + 1)).collect::<Vec<_>>()
        );
        assert_eq!(queue.len(r).unwrap(), 300);
        assert_eq!(queue.peek(r).unwrap().unwrap(), b"message 0");
    })
    .unwrap();
    // Change them, close, and reopen once more.
    pmem_examples::transaction(&pool, |tx| {
        for k in 0..150 {
            hash.remove(tx, &k)?;
            tree.remove(tx, &k)?;
            queue.dequeue(tx)?;
        }
        Ok(())
    })
    .unwrap();
    drop(pool);

    let pool = Pool::<AllRoot>::open(&path).unwrap();
    pool.read(|r| {
        assert_eq!(hash.len(r).unwrap(), 150);
        assert_eq!(Map::entries(tree, r).unwrap().first(), Some(&(150, 151)));
        assert_eq!(queue.peek(r).unwrap().unwrap(), b"message 150");
    })
    .unwrap();
    pool_is_clean(&pool).unwrap();
}

#[test]
fn string_store_file_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("string.pool");
    assert!(matches!(
        string_store::open(&path),
        Err(pmem_core::Error::NotFound { .. })
    ));
    {
        let pool = string_store::open_or_create(&path).unwrap();
        assert_eq!(string_store::read(&pool).unwrap(), None);
        string_store::write(&pool, "héllo".as_bytes()).unwrap();
    }
    let pool = string_store::open(&path).unwrap();
    assert_eq!(
        string_store::read(&pool).unwrap().as_deref(),
        Some("héllo".as_bytes())
    );
}

#[test]
fn map_pools_refuse_the_other_map_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("map.pool");
    drop(cli::open_map::<PHashMap<u64, u64>>(&path).unwrap());
    let err = cli::open_map::<PBTreeMap<u64, u64>>(&path).unwrap_err();
    assert!(
        matches!(
            err,
            pmem_examples::Error::Pool(pmem_core::Error::LayoutNameMismatch { .. })
        ),
        "{err}"
    );
    // Opening the right type again finds the same map, not a new one.
    let pool = cli::open_map::<PHashMap<u64, u64>>(&path).unwrap();
    let map = pool.read(|r| r.root().map).unwrap();
    assert!(!map.is_null());
    assert_eq!(cli::ensure_map(&pool).unwrap(), map);
}

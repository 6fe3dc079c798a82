//! PHashMap on damaged pools: metadata and slots rewritten as a hostile file could hold them.
//! Every operation returns a typed error or a bounded answer, never a panic or a hang.

use pmem_collections::hash::{HashMeta, Slot, TOMBSTONE};
use pmem_collections::{Error, Inconsistency, PHashMap, Result};
use pmem_core::{PSlice, Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    map: PHashMap<u64, u64>,
}

/// A map of 5 entries (8 slots), and its metadata.
fn map() -> (Pool<Root>, PHashMap<u64, u64>, HashMeta<u64, u64>) {
    let pool = Pool::<Root>::builder().create_simulated(2 << 20).unwrap();
    let map = pool
        .transaction(|tx| -> Result<_> {
            let map = PHashMap::new(tx)?;
            tx.root_mut().set_map(map)?;
            for k in 0..5 {
                map.insert(tx, k, k * 10)?;
            }
            Ok(map)
        })
        .unwrap();
    let meta = pool.read(|r| *r.get(map.as_ptr()).unwrap()).unwrap();
    (pool, map, meta)
}

fn damage(pool: &Pool<Root>, map: PHashMap<u64, u64>, meta: HashMeta<u64, u64>) {
    pool.transaction(|tx| tx.write(map.as_ptr(), meta)).unwrap();
}

fn inconsistency<T: std::fmt::Debug>(result: Result<T>) -> Inconsistency {
    match result {
        Err(Error::Inconsistent(what)) => what,
        other => panic!("expected an inconsistency, got {other:?}"),
    }
}

#[test]
fn a_length_that_does_not_match_is_reported() {
    let (pool, map, meta) = map();
    damage(&pool, map, HashMeta { len: 3, ..meta });
    pool.read(|r| {
        assert_eq!(
            inconsistency(map.verify(r)),
            Inconsistency::HashLenMismatch { len: 3, found: 5 }
        );
        // Iteration stops at the first entry past the length.
        let items: Vec<_> = map.iter(r).collect();
        assert_eq!(items.len(), 4);
        assert!(matches!(
            items[3],
            Err(Error::Inconsistent(Inconsistency::HashLenMismatch {
                len: 3,
                found: 4
            }))
        ));
    })
    .unwrap();
    // Growing or clearing counts the entries too: three inserts fill the 8 slots (the length
    // says 6), and the fourth must grow.
    let grown = pool.transaction(|tx| -> Result<()> {
        for k in 100..104 {
            map.insert(tx, k, 1)?;
        }
        Ok(())
    });
    assert!(
        matches!(
            grown,
            Err(Error::Inconsistent(Inconsistency::HashLenMismatch { .. }))
        ),
        "{grown:?}"
    );
    let cleared = pool.transaction(|tx| map.clear(tx));
    assert!(
        matches!(
            cleared,
            Err(Error::Inconsistent(Inconsistency::HashLenMismatch { .. }))
        ),
        "{cleared:?}"
    );
    let report = pmem_core::check::check(&pool);
    assert!(report.is_healthy(), "{report}");
}

#[test]
fn a_slot_count_that_is_not_a_power_of_two_is_refused() {
    let (pool, map, meta) = map();
    let seven = PSlice::from_raw_parts(meta.slots.offset(), 7);
    damage(
        &pool,
        map,
        HashMeta {
            slots: seven,
            ..meta
        },
    );
    pool.read(|r| {
        assert_eq!(
            inconsistency(map.get(r, &1)),
            Inconsistency::HashSlotsNotPowerOfTwo { slots: 7 }
        );
        assert!(map.iter(r).next().unwrap().is_err());
    })
    .unwrap();
    let insert = pool.transaction(|tx| map.insert(tx, 9, 9));
    assert!(matches!(
        insert,
        Err(Error::Inconsistent(Inconsistency::HashSlotsNotPowerOfTwo {
            slots: 7
        }))
    ));
}

#[test]
fn a_table_pointing_at_the_wrong_object_is_a_pool_error() {
    let (pool, map, meta) = map();
    let wrong = PSlice::from_raw_parts(map.as_ptr().offset(), meta.slots.len());
    damage(
        &pool,
        map,
        HashMeta {
            slots: wrong,
            ..meta
        },
    );
    pool.read(|r| {
        assert!(matches!(map.verify(r), Err(Error::Pool(_))));
        assert!(matches!(map.get(r, &1), Err(Error::Pool(_))));
        assert!(map.iter(r).any(|e| matches!(e, Err(Error::Pool(_)))));
    })
    .unwrap();
    let insert = pool.transaction(|tx| map.insert(tx, 9, 9));
    assert!(matches!(insert, Err(Error::Pool(_))), "{insert:?}");
}

/// Every slot taken by one entry, under a length that agrees: no free slot, so a lookup of a
/// missing key walks the table once and stops, and verification names the duplicate.
#[test]
fn a_table_with_no_free_slot_is_walked_once() {
    let (pool, map, meta) = map();
    let slots = pool
        .read(|r| r.get_slice(meta.slots).unwrap().to_vec())
        .unwrap();
    let one = *slots.iter().find(|s| s.is_taken()).unwrap();
    pool.transaction(|tx| -> pmem_core::Result<()> {
        let full = vec![one; 8];
        tx.get_slice_mut(meta.slots)?.copy_from_slice(&full);
        tx.write(map.as_ptr(), HashMeta { len: 8, ..meta })
    })
    .unwrap();
    pool.read(|r| {
        assert_eq!(map.get(r, &12345).unwrap(), None);
        assert!(matches!(
            map.verify(r),
            Err(Error::Inconsistent(
                Inconsistency::HashKeyTwice { .. } | Inconsistency::HashEntryMisplaced { .. }
            ))
        ));
    })
    .unwrap();
}

#[test]
fn a_wrong_stored_hash_or_tombstone_count_is_reported() {
    let (pool, map, meta) = map();
    let slots = pool
        .read(|r| r.get_slice(meta.slots).unwrap().to_vec())
        .unwrap();
    let taken = slots.iter().position(|s| s.is_taken()).unwrap();
    let moved = Slot {
        hash: (slots[taken].hash() ^ 0x10).to_le_bytes(),
        ..slots[taken]
    };
    pool.transaction(|tx| tx.edit_slice(meta.slots)?.set_at(taken, moved))
        .unwrap();
    pool.read(|r| {
        assert_eq!(
            inconsistency(map.verify(r)),
            Inconsistency::HashEntryMisplaced { slot: taken as u64 }
        );
    })
    .unwrap();
    pool.transaction(|tx| tx.edit_slice(meta.slots)?.set_at(taken, slots[taken]))
        .unwrap();
    let empty = slots.iter().position(|s| !s.is_taken()).unwrap();
    let dead = Slot {
        hash: TOMBSTONE.to_le_bytes(),
        key: 0,
        value: 0,
    };
    pool.transaction(|tx| tx.edit_slice(meta.slots)?.set_at(empty, dead))
        .unwrap();
    pool.read(|r| {
        assert_eq!(
            inconsistency(map.verify(r)),
            Inconsistency::HashTombstoneMismatch {
                recorded: 0,
                found: 1
            }
        );
    })
    .unwrap();
}

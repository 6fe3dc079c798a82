//! The inspector and the deep check read pools without their types, from a type table stored in
//! the pool: a damaged or hostile pool must give problems or errors, never a panic or a read
//! outside the pool.

use pmem_core::inspect::Inspection;
use pmem_core::{PPtr, PSlice, Persistent, Pool, PoolImage};
use pmem_tests::rng::splitmix64 as splitmix;

#[derive(Persistent)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
    items: PSlice<u64>,
}

#[derive(Persistent)]
#[repr(C)]
struct Root {
    heads: [PPtr<Node>; 4],
    count: u64,
}

/// A pool with four lists whose nodes hold slices, and an unreachable large object, read back
/// from its file as an image.
fn sample() -> PoolImage {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.pool");
    {
        let pool = Pool::<Root>::create(&path, 2 << 20).unwrap();
        pool.transaction(|tx| {
            for h in 0..4 {
                for i in 0..10u64 {
                    let items = tx.alloc_slice(&[i; 5])?;
                    let next = tx.root().heads[h];
                    let node = tx.alloc(Node {
                        value: i,
                        next,
                        items,
                    })?;
                    tx.root_mut().heads_mut().set_at(h, node)?;
                }
            }
            tx.alloc_zeroed::<[u64; 8192]>()?;
            tx.root_mut().set_count(40)
        })
        .unwrap();
    }
    pmem_core::check::read_pool_file(&path).unwrap()
}

#[test]
fn damaged_pools_give_problems_not_panics() {
    let pristine = sample();
    let healthy = Inspection::from_image(pristine.clone()).unwrap();
    let report = healthy.check();
    assert!(report.is_healthy(), "{report}");
    assert_eq!(report.reachable_objects, 80, "{report}");
    assert_eq!(
        report.unreachable.len(),
        1,
        "the large object is not published"
    );
    let root_offset = healthy.info().root_offset;
    let len = pristine.len() as u64;
    // Where damage matters most: the type table, the root, the chunk table and bitmaps, the logs,
    // the heap; anywhere at all.
    let regions: [(u64, u64); 6] = [
        (0x8000 + 2 * 0x10000, 0x10000),
        (root_offset, 64),
        (root_offset + 4096, 0x4000),
        (0x2000, 2 * 0x10000),
        (root_offset + 0x4000, len - root_offset - 0x4000),
        (0, len),
    ];
    let mut state = 0xF022;
    let mut opened = 0;
    let mut problems = 0;
    for round in 0..600 {
        let mut image = pristine.clone();
        let (start, size) = regions[round % regions.len()];
        let bytes = image.as_bytes_mut();
        for _ in 0..1 + splitmix(&mut state) % 8 {
            let at = (start + splitmix(&mut state) % size) as usize;
            // Flip bits, or write a plausible-looking offset (the worst case for a walker).
            if splitmix(&mut state) % 2 == 0 {
                bytes[at] ^= 1 << (splitmix(&mut state) % 8);
            } else {
                let at = at & !7;
                let v = match splitmix(&mut state) % 4 {
                    0 => splitmix(&mut state),
                    1 => splitmix(&mut state) % len,
                    2 => u64::MAX - splitmix(&mut state) % 64,
                    _ => splitmix(&mut state) % 1024,
                };
                if at + 8 <= bytes.len() {
                    bytes[at..at + 8].copy_from_slice(&v.to_le_bytes());
                }
            }
        }
        let Ok(inspection) = Inspection::from_image(image) else {
            continue;
        };
        opened += 1;
        let report = inspection.check();
        if !report.is_healthy() {
            problems += 1;
        }
        let _ = inspection.stats();
        for object in inspection.objects().iter().take(50) {
            let _ = inspection.object_at(object.offset);
            let _ = inspection.bytes(object.offset, object.size);
        }
        let _ = inspection.object_at(splitmix(&mut state) % len);
    }
    println!("600 damaged images: {opened} opened, {problems} of those reported problems");
    assert!(
        opened > 100 && problems > 10,
        "the damage should be both survivable and visible"
    );
}

//! Over-aligned types: every allocation path places an object at an address aligned for its
//! type, up to `MAX_ALIGN`, in every size class of the runs and as a large object, in a file
//! pool (a real mapping) and in a simulated one.

#![allow(missing_debug_implementations)]

use core::mem::align_of;

use pmem_core::{PPtr, PSlice, Persistent, Pool, Result, Tx, MAX_ALIGN};

#[derive(Persistent, Clone, Copy)]
#[repr(C, align(16))]
struct A16([u8; 16]);

#[derive(Persistent, Clone, Copy)]
#[repr(C, align(32))]
struct A32([u8; 32]);

#[derive(Persistent, Clone, Copy)]
#[repr(C, align(64))]
struct A64([u8; 64]);

#[derive(Persistent, Clone, Copy)]
#[repr(C, align(128))]
struct A128([u8; 128]);

#[derive(Persistent, Clone, Copy)]
#[repr(C, align(1024))]
struct A1024([u8; 1024]);

#[derive(Persistent, Clone, Copy)]
#[repr(C, align(4096))]
struct Page([u8; 4096]);

/// A page-aligned type whose alignment comes from a field, not from its own `repr`.
#[derive(Persistent)]
#[repr(C)]
struct HoldsPage {
    page: Page,
}

#[derive(Persistent)]
#[repr(C, align(4096))]
struct Root {
    count: u64,
    last: PPtr<Page>,
    _pad: [u8; 4080],
}

const POOL_SIZE: u64 = 64 << 20;

fn assert_aligned<T>(what: &str, address: *const T) {
    assert_eq!(
        address as usize % align_of::<T>(),
        0,
        "{what}: {} at {address:p} is misaligned",
        core::any::type_name::<T>()
    );
}

/// Allocates `T` through every transactional path, and a slice of each length in `lengths`
/// (which puts the object in every size class whose unit fits those lengths), and checks the
/// address of every one.
fn alloc_every_way<T: Persistent + Copy, R: Persistent>(
    tx: &mut Tx<'_, R>,
    value: T,
    lengths: impl Iterator<Item = u64>,
) -> Result<()> {
    let p = tx.alloc(value)?;
    assert_aligned("alloc", tx.get(p)? as *const T);
    let z: PPtr<T> = tx.alloc_zeroed()?;
    assert_aligned("alloc_zeroed", tx.get(z)? as *const T);
    for len in lengths {
        let s: PSlice<T> = tx.alloc_slice_zeroed(len)?;
        assert_aligned("alloc_slice_zeroed", tx.get_slice(s)?.as_ptr());
        if len <= 64 {
            let values = vec![value; len as usize];
            let s = tx.alloc_slice(&values)?;
            assert_aligned("alloc_slice", tx.get_slice(s)?.as_ptr());
        }
    }
    Ok(())
}

/// Object sizes that land in every size class of the runs (every 16 bytes to 128, then four
/// per doubling to 32 KiB), then large objects of one, two and five chunks and more.
fn sizes() -> Vec<u64> {
    let mut sizes: Vec<u64> = (1..=8).map(|i| i * 16).collect();
    let mut base = 128;
    while base < 32 * 1024 {
        sizes.extend((1..=4).map(|i| base + i * base / 4));
        base *= 2;
    }
    sizes.extend([32 * 1024 + 16, 64 * 1024, 80 * 1024 + 4096]);
    sizes
}

/// Slice lengths of `T` that make the slices of [`sizes`] (those that are whole elements).
fn lengths<T>() -> impl Iterator<Item = u64> {
    let element = core::mem::size_of::<T>() as u64;
    sizes()
        .into_iter()
        .filter(move |s| s % element == 0)
        .map(move |s| s / element)
}

fn exercise(pool: &Pool<Root>) {
    assert_eq!(MAX_ALIGN, 4096);
    pool.read(|r| assert_aligned("root", r.root() as *const Root))
        .unwrap();
    pool.transaction(|tx| -> pmem_core::Result<_> {
        alloc_every_way(tx, A16([1; 16]), lengths::<A16>())?;
        alloc_every_way(tx, A32([2; 32]), lengths::<A32>())?;
        alloc_every_way(tx, A64([3; 64]), lengths::<A64>())?;
        alloc_every_way(tx, A128([4; 128]), lengths::<A128>())?;
        alloc_every_way(tx, A1024([5; 1024]), lengths::<A1024>())?;
        alloc_every_way(tx, Page([6; 4096]), lengths::<Page>())?;
        let held = tx.alloc(HoldsPage {
            page: Page([7; 4096]),
        })?;
        assert_aligned("alloc", tx.get(held)? as *const HoldsPage);
        let page = tx.alloc(Page([8; 4096]))?;
        tx.root_mut().set_last(page)?;
        Ok(())
    })
    .unwrap();
    // After commit, through the reader (the heap metadata, not the transaction's fresh list).
    let page = pool.read(|r| r.root().last).unwrap();
    pool.read(|r| assert_aligned("reader", r.get(page).unwrap() as *const Page))
        .unwrap();
    // Outside a transaction: the one-step allocation.
    let small = pool.alloc(A64([9; 64])).unwrap();
    let big = pool.alloc(Page([9; 4096])).unwrap();
    pool.read(|r| {
        assert_aligned("Pool::alloc", r.get(small).unwrap() as *const A64);
        assert_aligned("Pool::alloc", r.get(big).unwrap() as *const Page);
        let every_a64: Vec<_> = r.objects::<A64>().collect();
        assert!(!every_a64.is_empty());
        for p in every_a64 {
            assert_aligned("objects", r.get(p).unwrap() as *const A64);
        }
    })
    .unwrap();
    let report = pmem_core::check::check(pool);
    assert!(report.is_healthy(), "{report}");
}

#[test]
fn over_aligned_objects_are_aligned_in_a_simulated_pool() {
    let pool = Pool::<Root>::builder().create_simulated(POOL_SIZE).unwrap();
    exercise(&pool);
}

#[test]
fn over_aligned_objects_are_aligned_in_a_file_pool() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("aligned.pool");
    let pool = Pool::<Root>::create(&path, POOL_SIZE).unwrap();
    exercise(&pool);
    drop(pool);
    // And again after reopening, at whatever address the new mapping has.
    let pool = Pool::<Root>::open(&path).unwrap();
    let page = pool.read(|r| r.root().last).unwrap();
    pool.read(|r| assert_aligned("reopened", r.get(page).unwrap() as *const Page))
        .unwrap();
}

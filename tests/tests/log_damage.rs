//! Damage and torn tails in a transaction's log: never half applied.
//!
//! A transaction writes its redo entries and its commit record together, under its one fence,
//! so they persist in any order: an invalid entry among them is a torn tail, even with valid
//! ones after it, and recovery takes the transaction for not committed. Damage there (a flipped
//! bit on the media) cannot be told from a torn tail, so it too leaves the transaction out,
//! whole: what must never happen is part of it applied. (Damage that a later fenced entry proves
//! durable is refused; `error_kinds_crafted` crafts such logs.)

use pmem_core::crash::{CrashTest, ImageKind};
use pmem_core::{check, Persistent, Pool, PoolImage, Result};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    a: u64,
    b: u64,
    c: u64,
    d: u64,
    e: u64,
}

const POOL: u64 = 4 << 20;
const LOG_OFFSET_FIELD: usize = 80;
const LOG_SLOT_SIZE: u64 = 64 * 1024;

/// Five fields, five writes (each its own range, so its own redo entry, the fields being
/// written apart).
fn workload(pool: &Pool<Root>) -> Result<()> {
    pool.transaction(|tx| {
        tx.root_mut().set_a(1)?;
        tx.root_mut().set_c(3)?;
        tx.root_mut().set_e(5)?;
        tx.root_mut().set_b(2)?;
        tx.root_mut().set_d(4)
    })
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// The crash image at the transaction's commit fence with everything written by then durable:
/// its redo entries and commit record, and none of its writes in place; and the offset of the
/// slot holding its log.
fn interrupted() -> (PoolImage, u64) {
    let test = CrashTest::new(POOL);
    let fences = CrashTest::new(POOL)
        .every_nth_fence(u64::MAX)
        .random_subsets(0)
        .run::<Root>(workload, |_, _| Ok(()))
        .fences;
    for fence in 0..=fences {
        // Fences made while creating the pool are not the workload's.
        let Ok(image) = test.image_at::<Root>(workload, fence, ImageKind::Everything) else {
            continue;
        };
        let Ok(pool) = Pool::<Root>::builder().open_image(image.clone()) else {
            continue;
        };
        let r = pool.info().recovery;
        if !r.rolled_back && r.redo_applied > 0 {
            let bytes = image.as_bytes();
            let log = u64_at(bytes, LOG_OFFSET_FIELD);
            let gens = [0, 1].map(|i| u64_at(bytes, (log + i * LOG_SLOT_SIZE) as usize + 8));
            let slot = u64::from(gens[1] > gens[0]);
            return (image, log + slot * LOG_SLOT_SIZE);
        }
    }
    panic!("no crash image with the commit record durable");
}

/// `image` with one bit flipped in the payload of entry `entry` (each takes 64 bytes).
fn flipped(image: &PoolImage, slot_offset: u64, entry: u64) -> PoolImage {
    let at = slot_offset + 64 * entry;
    let mut bytes = image.as_bytes().to_vec();
    bytes[(at + 24) as usize] ^= 1;
    PoolImage::from_bytes(&bytes)
}

fn fields(pool: &Pool<Root>) -> [u64; 5] {
    pool.read(|r| [r.root().a, r.root().b, r.root().c, r.root().d, r.root().e])
        .unwrap()
}

#[test]
fn a_durable_commit_record_completes_the_transaction() {
    let (image, _) = interrupted();
    let pool = Pool::<Root>::builder().open_image(image).unwrap();
    assert_eq!(fields(&pool), [1, 2, 3, 4, 5]);
    assert_eq!(pool.info().recovery.redo_applied, 5);
    assert!(check::check(&pool).is_healthy());
}

#[test]
fn an_invalid_entry_anywhere_in_the_last_group_leaves_the_whole_transaction_out() {
    let (image, slot_offset) = interrupted();
    // Entries 0 to 4 are the redo entries, 5 the commit record.
    for entry in 0..6 {
        let torn = flipped(&image, slot_offset, entry);
        let pool = Pool::<Root>::builder()
            .open_image(torn.clone())
            .unwrap_or_else(|e| panic!("entry {entry}: {e}"));
        assert_eq!(fields(&pool), [0; 5], "entry {entry}");
        let r = pool.info().recovery;
        assert_eq!((r.redo_applied, r.undo_applied), (0, 0), "entry {entry}");
        drop(pool);
        let report = check::check_image(torn).unwrap();
        assert!(report.is_healthy(), "entry {entry}: {report}");
    }
}

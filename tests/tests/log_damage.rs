//! A damaged undo log is refused, not half applied; a torn tail is recovered.
//!
//! An interrupted transaction wrote five fields, each logged by its own undo entry and fence. One
//! flipped byte in the second entry must refuse the open (naming the slot and offset) rather than
//! roll back only the first field; the same flip in the last entry, which a crash can leave torn,
//! must open and roll back the other four.

use pmem_core::crash::{CrashTest, ImageKind};
use pmem_core::error::{Corruption, LogCorruption};
use pmem_core::{check, PPtr, Persistent, Pool, PoolImage, Result};

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

fn workload(pool: &Pool<Root>) -> Result<()> {
    pool.transaction(|tx| {
        tx.root_mut().set_a(1)?;
        tx.root_mut().set_b(2)?;
        tx.root_mut().set_c(3)?;
        tx.root_mut().set_d(4)?;
        tx.root_mut().set_e(5)
    })
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// The crash image after the fifth undo entry and the first four writes, before the commit;
/// and the index and offset of the slot holding its log.
fn interrupted() -> (PoolImage, u64, u64) {
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
        if r.rolled_back && r.undo_applied == 5 {
            let bytes = image.as_bytes();
            let log = u64_at(bytes, LOG_OFFSET_FIELD);
            let gens = [0, 1].map(|i| u64_at(bytes, (log + i * LOG_SLOT_SIZE) as usize + 8));
            let slot = u64::from(gens[1] > gens[0]);
            return (image, slot, log + slot * LOG_SLOT_SIZE);
        }
    }
    panic!("no crash image with five undo entries and no commit");
}

/// `image` with one bit flipped in the old value of undo entry `entry` (each takes 64 bytes).
fn flipped(image: &PoolImage, slot_offset: u64, entry: u64) -> (PoolImage, u64) {
    let at = slot_offset + 64 * entry;
    let mut bytes = image.as_bytes().to_vec();
    bytes[(at + 32) as usize] ^= 1;
    (PoolImage::from_bytes(&bytes), at)
}

#[test]
fn a_flipped_byte_inside_an_interrupted_log_refuses_the_open() {
    let (image, slot, slot_offset) = interrupted();
    let (damaged, at) = flipped(&image, slot_offset, 1);
    let err = Pool::<Root>::builder()
        .open_image(damaged.clone())
        .expect_err("a damaged log must not be half rolled back");
    match err {
        pmem_core::Error::Corrupt {
            problem:
                Corruption::Log {
                    slot: s,
                    problem: LogCorruption::Damaged { pos, .. },
                },
            ..
        } => assert_eq!((s, pos), (slot, at)),
        ref other => panic!("expected a damaged log entry, got {other:?}"),
    }
    let message = err.to_string();
    for part in [
        format!("log slot {slot}"),
        format!("{at:#x}"),
        "damaged".into(),
    ] {
        assert!(message.contains(&part), "{message:?} lacks {part:?}");
    }
    let err = check::check_image(damaged).expect_err("the check reports the damage");
    assert!(err.to_string().contains(&format!("{at:#x}")), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.pool");
    std::fs::write(&path, flipped(&image, slot_offset, 1).0.as_bytes()).unwrap();
    assert!(check::check_file(&path).is_err());
}

#[test]
fn a_torn_last_entry_is_a_tail_and_rolls_back() {
    let (image, _, slot_offset) = interrupted();
    let (torn, _) = flipped(&image, slot_offset, 4);
    let pool = Pool::<Root>::builder().open_image(torn.clone()).unwrap();
    let r = pool
        .read(|r| [r.root().a, r.root().b, r.root().c, r.root().d, r.root().e])
        .unwrap();
    assert_eq!(r, [0; 5]);
    assert_eq!(pool.info().recovery.undo_applied, 4);
    drop(pool);
    let report = check::check_image(torn).unwrap();
    assert!(report.is_healthy(), "{report}");
}

#[derive(Persistent)]
#[repr(C)]
struct Node {
    v: u64,
}

#[derive(Persistent)]
#[repr(C)]
struct Nodes {
    a: u64,
    n: [PPtr<Node>; 3],
}

/// Sets `a` (one undo entry, one fence), then logs three nodes together (three entries, one
/// fence) and writes them.
fn grouped_workload(pool: &Pool<Nodes>) -> Result<()> {
    let mut n = [PPtr::null(); 3];
    for (i, p) in n.iter_mut().enumerate() {
        *p = pool.alloc(Node { v: 10 + i as u64 })?;
    }
    pool.transaction(|tx| tx.root_mut().set_n(n))?;
    pool.transaction(|tx| {
        tx.root_mut().set_a(1)?;
        let [x, y, z] = tx.get_mut_many(n)?;
        (x.v, y.v, z.v) = (20, 21, 22);
        Ok(())
    })
}

/// The image at the fence of the three-node group, its log slot's offset.
fn grouped() -> (PoolImage, u64) {
    let test = CrashTest::new(POOL);
    let fences = CrashTest::new(POOL)
        .every_nth_fence(u64::MAX)
        .random_subsets(0)
        .run::<Nodes>(grouped_workload, |_, _| Ok(()))
        .fences;
    for fence in 0..=fences {
        let Ok(image) = test.image_at::<Nodes>(grouped_workload, fence, ImageKind::Everything)
        else {
            continue;
        };
        let Ok(pool) = Pool::<Nodes>::builder().open_image(image.clone()) else {
            continue;
        };
        let r = pool.info().recovery;
        if r.rolled_back && r.undo_applied == 4 {
            let bytes = image.as_bytes();
            let log = u64_at(bytes, LOG_OFFSET_FIELD);
            let gens = [0, 1].map(|i| u64_at(bytes, (log + i * LOG_SLOT_SIZE) as usize + 8));
            let slot = u64::from(gens[1] > gens[0]);
            return (image, log + slot * LOG_SLOT_SIZE);
        }
    }
    panic!("no crash image with the group logged and no commit");
}

/// Entries flushed under one fence persist in any order: the first of the group torn while the
/// other two reached the media is a torn tail, not damage.
#[test]
fn a_torn_entry_before_valid_ones_of_its_own_group_is_a_tail() {
    let (image, slot_offset) = grouped();
    let (torn, _) = flipped(&image, slot_offset, 1);
    let pool = Pool::<Nodes>::builder()
        .open_image(torn.clone())
        .expect("a legitimate crash image opens");
    assert_eq!(pool.info().recovery.undo_applied, 1);
    let (a, n) = pool.read(|r| (r.root().a, r.root().n)).unwrap();
    assert_eq!(a, 0);
    for (i, p) in n.iter().enumerate() {
        assert_eq!(
            pool.read(|r| r.get(*p).map(|n| n.v)).unwrap().unwrap(),
            10 + i as u64
        );
    }
    drop(pool);
    let report = check::check_image(torn).unwrap();
    assert!(report.is_healthy(), "{report}");
}

/// The middle entry of the group torn, the last one persisted: a torn tail too.
#[test]
fn a_torn_entry_inside_a_group_is_a_tail() {
    let (image, slot_offset) = grouped();
    let (torn, _) = flipped(&image, slot_offset, 2);
    let pool = Pool::<Nodes>::builder()
        .open_image(torn)
        .expect("a legitimate crash image opens");
    assert_eq!(pool.info().recovery.undo_applied, 2);
    assert_eq!(pool.read(|r| r.root().a).unwrap(), 0);
}

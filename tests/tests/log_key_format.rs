//! A pool whose log was keyed as format 2.0 keyed it (one SipHash-1-3 of the generation under
//! the pool's secret per generation, before keys were shared by epochs of 256 generations) is
//! either recovered or refused by this version, never opened as if it had no log: under this
//! version's keys every entry of such a log fails its checksum, so only the version in the
//! header can tell the two apart (format 3.0 refuses it).
use pmem_core::crash::{CrashTest, ImageKind};
use pmem_core::{Persistent, Pool, PoolImage, Result};
use pmem_tests::hostile::format::{
    entries, entry_checksum, log_key, put, seal_header, u64_at, ENTRY_HEADER, HEADER_FIELDS,
    HEADER_SIZE,
};
use xxhash_rust::xxh3::xxh3_64_with_seed;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    a: u64,
    b: u64,
    c: u64,
}

const POOL: u64 = 4 << 20;

fn workload(pool: &Pool<Root>) -> Result<()> {
    pool.transaction(|tx| {
        tx.root_mut().set_a(1)?;
        tx.root_mut().set_b(2)?;
        tx.root_mut().set_c(3)
    })
}

/// A crash image at the transaction's commit fence, its three redo entries and commit record
/// durable and none of its writes in place: recovery must complete it.
fn interrupted() -> PoolImage {
    let test = CrashTest::new(POOL);
    let fences = CrashTest::new(POOL)
        .every_nth_fence(u64::MAX)
        .random_subsets(0)
        .run::<Root>(workload, |_, _| Ok(()))
        .fences;
    for fence in 0..=fences {
        let Ok(image) = test.image_at::<Root>(workload, fence, ImageKind::Everything) else {
            continue;
        };
        let Ok(pool) = Pool::<Root>::builder().open_image(image.clone()) else {
            continue;
        };
        let r = pool.info().recovery;
        if !r.rolled_back && r.redo_applied == 3 {
            return image;
        }
    }
    panic!("no crash image with three redo entries and a commit record");
}

/// The checksum the first format 2.0 writer gave an entry: xxh3 of the payload seeded by
/// SipHash-1-3 of the generation itself, mixed with the entry's offset and header.
fn per_generation_checksum(
    key: (u64, u64),
    at: u64,
    kind_word: u32,
    len: u32,
    gen: u64,
    payload: &[u8],
) -> u64 {
    use std::hash::Hasher;
    let mut sip = siphasher::sip::SipHasher13::new_with_keys(key.0, key.1);
    sip.write(&gen.to_le_bytes());
    let header = (kind_word as u64) << 32 | len as u64;
    let bind = at.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ header.rotate_left(23);
    xxh3_64_with_seed(payload, sip.finish() ^ bind)
}

/// `image` as the first format 2.0 writer would have left it: every entry this version wrote
/// validly, keyed per generation instead, and a header that says format 2.0.
fn keyed_per_generation(image: &PoolImage) -> (PoolImage, usize) {
    let mut bytes = image.as_bytes().to_vec();
    let key = log_key(&bytes);
    let mut resealed = 0;
    for slot in 0..2 {
        for e in entries(&bytes, slot) {
            let start = (e.at + ENTRY_HEADER) as usize;
            let payload = bytes[start..start + e.len as usize].to_vec();
            let (kw, len) = (e.kind_word, e.len as u32);
            if u64_at(&bytes, e.at + 16) != entry_checksum(key, e.at, kw, len, e.gen, &payload) {
                // A torn or stale entry: it stays invalid.
                continue;
            }
            let old = per_generation_checksum(key, e.at, kw, len, e.gen, &payload);
            put(&mut bytes, e.at + 16, 8, old);
            resealed += 1;
        }
    }
    for copy in 0..2 {
        for &(name, at, width) in HEADER_FIELDS {
            let value = match name {
                "major" => 2,
                "minor" => 0,
                _ => continue,
            };
            put(&mut bytes, (copy * HEADER_SIZE + at) as u64, width, value);
        }
        seal_header(&mut bytes, copy);
    }
    (PoolImage::from_bytes(&bytes), resealed)
}

#[test]
fn a_crash_image_keyed_per_generation_is_recovered_or_refused_never_opened_as_is() {
    let image = interrupted();
    let (old, resealed) = keyed_per_generation(&image);
    assert!(resealed >= 3, "only {resealed} entries were valid");
    match Pool::<Root>::builder().open_image(old) {
        Err(_) => {}
        Ok(pool) => {
            let r = pool.info().recovery;
            let root = pool.read(|r| [r.root().a, r.root().b, r.root().c]).unwrap();
            assert!(
                r.redo_applied == 3 && root == [1, 2, 3],
                "a format 2.0 pool crashed at a commit opened without completing it: \
                 recovery {r:?}, root {root:?} (the committed transaction's writes lost)"
            );
        }
    }
}

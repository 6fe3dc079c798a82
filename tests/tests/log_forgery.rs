//! Bytes an application stores end up verbatim in redo entries, and log slots are reused without
//! being cleared. Whatever those bytes are, recovery must never take them for a live entry.
//!
//! The attack: a value spells, at the position recovery reads right after the first entry of a
//! later transaction, well-formed entries of that transaction's generation (as an unkeyed format
//! would check them: checksum of the payload seeded by the header fields): a redo entry writing
//! a field no transaction writes, and a commit record. The value is logged by one transaction,
//! the slot is reused two generations later, and a crash before that transaction's commit record
//! is durable makes recovery read the stale bytes as its second and third entries.

use pmem_core::crash::{CrashTest, ImageKind};
use pmem_core::{Persistent, Pool, Result};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    /// No transaction ever writes it.
    victim: u64,
    x: u64,
    data: [u8; 512],
}

const POOL: u64 = 4 << 20;
const FORGED: u64 = 0xdead_beef_0bad_f00d;
/// Header fields at fixed offsets (`layout/header.rs`).
const ROOT_OFFSET_FIELD: usize = 104;
const LOG_OFFSET_FIELD: usize = 80;
const LOG_SLOT_SIZE: u64 = 64 * 1024;

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// The entry checksum of the unkeyed format: xxh3-64 of the payload, seeded by the header.
fn unkeyed_checksum(kind_word: u32, len: u32, gen: u64, payload: &[u8]) -> u64 {
    let seed =
        gen ^ ((kind_word as u64) << 32 | len as u64).rotate_left(17) ^ 0x5052_4d45_4d4c_4f47;
    xxhash_rust::xxh3::xxh3_64_with_seed(payload, seed)
}

/// An entry of generation `gen` with `payload`, in the unkeyed format's header, with `flags`
/// (this format's "written after a fence" flag, or none).
fn forged(kind: u32, flags: u32, gen: u64, payload: &[u8]) -> [u8; 64] {
    let mut e = [0u8; 64];
    let kind_word = kind | flags << 8;
    let len = payload.len() as u32;
    e[..8].copy_from_slice(&(kind_word as u64 | (len as u64) << 32).to_le_bytes());
    e[8..16].copy_from_slice(&gen.to_le_bytes());
    e[16..24].copy_from_slice(&unkeyed_checksum(kind_word, len, gen, payload).to_le_bytes());
    e[24..24 + payload.len()].copy_from_slice(payload);
    e
}

/// A redo entry writing `new` at `target`.
fn forged_redo(gen: u64, target: u64, new: u64, flags: u32) -> [u8; 64] {
    let mut payload = [0u8; 16];
    payload[..8].copy_from_slice(&target.to_le_bytes());
    payload[8..].copy_from_slice(&new.to_le_bytes());
    forged(7, flags, gen, &payload)
}

/// A commit record with no ops and no new objects, whose data hash matches any pool.
fn forged_commit(gen: u64) -> [u8; 64] {
    forged(5, 0, gen, &0x6461_7461_6861_7368u64.to_le_bytes())
}

/// A logs `value` as `data` (one redo entry holding it), B writes `x`, C writes `x` again: C
/// uses A's slot, and recovery reads the entries after C's first.
fn workload(value: [u8; 512]) -> impl FnOnce(&Pool<Root>) -> Result<()> {
    move |pool| {
        pool.transaction(|tx| tx.root_mut().set_data(value))?;
        pool.transaction(|tx| tx.root_mut().set_x(5))?;
        pool.transaction(|tx| tx.root_mut().set_x(6))?;
        Ok(())
    }
}

/// The state after the first two transactions: root offset, and the generation and slot C
/// will use, checking that A's redo entry holds `data` where the attack expects it.
fn probe() -> (u64, u64) {
    let test = CrashTest::new(POOL);
    let prefix = |pool: &Pool<Root>| {
        pool.transaction(|tx| tx.root_mut().set_data([1; 512]))?;
        pool.transaction(|tx| tx.root_mut().set_x(5))?;
        Ok(())
    };
    let fences = CrashTest::new(POOL)
        .every_nth_fence(u64::MAX)
        .random_subsets(0)
        .run::<Root>(prefix, |_, _| Ok(()))
        .fences;
    let image = test
        .image_at::<Root>(prefix, fences, ImageKind::Everything)
        .unwrap();
    let bytes = image.as_bytes();
    let root = u64_at(bytes, ROOT_OFFSET_FIELD);
    let log = u64_at(bytes, LOG_OFFSET_FIELD);
    let gens = [0, 1].map(|i| u64_at(bytes, (log + i * LOG_SLOT_SIZE) as usize + 8));
    let c = gens[0].max(gens[1]);
    let d_slot = log + ((c + 1) % 2) * LOG_SLOT_SIZE;
    assert_eq!(
        u64_at(bytes, d_slot as usize + 24),
        root + 16,
        "A's redo of `data` is the first entry of C's slot"
    );
    assert_eq!(&bytes[d_slot as usize + 32..][..512], &[1u8; 512][..]);
    (root, c + 1)
}

#[test]
fn stored_bytes_spelling_a_future_log_entry_are_never_applied() {
    let (root, d_gen) = probe();
    let mut value = [0u8; 512];
    // C's first entry (an 8-byte redo) takes one 64-byte line; A's entry put `value` 32 bytes
    // into the slot, so `value[32..]` is what recovery reads as C's second entry.
    value[32..96].copy_from_slice(&forged_redo(d_gen, root, FORGED, 0));
    value[96..160].copy_from_slice(&forged_commit(d_gen));
    value[160..224].copy_from_slice(&forged_redo(d_gen, root, FORGED, 1));
    value[224..288].copy_from_slice(&forged_commit(d_gen));
    let report = CrashTest::new(POOL)
        .random_subsets(4)
        .run::<Root>(workload(value), |pool, _| {
            let (victim, x) = pool.read(|r| (r.root().victim, r.root().x)).unwrap();
            if victim != 0 {
                return Err(format!(
                    "recovery applied a forged entry: victim = {victim:#x}"
                ));
            }
            if ![0, 5, 6].contains(&x) {
                return Err(format!("x = {x}"));
            }
            Ok(())
        });
    report.assert_ok();
}

//! The keys and values of the index workloads: the integers `0..n` in a scattered order (a
//! fixed-seed permutation, the same in every process and for every system), each with a 24-byte
//! value made from its key.

/// The permutation's seed: fixed, so every system inserts the same keys in the same order.
const SEED: u64 = 0x5eed_f11e_5000_0001;

/// The size of a value, in bytes.
pub const VALUE_LEN: usize = 24;

/// A value of the index.
pub type Value = [u8; VALUE_LEN];

/// `0..n` shuffled (Fisher-Yates over a splitmix64 stream seeded with a constant).
///
/// ```
/// # use pmem_files_bench::keys::scattered;
/// let keys = scattered(1000);
/// let mut sorted = keys.clone();
/// sorted.sort_unstable();
/// assert_eq!(sorted, (0..1000).collect::<Vec<u64>>()); // a permutation
/// assert_ne!(keys[..10], sorted[..10]);               // in a scattered order
/// assert_eq!(keys, scattered(1000));                  // the same every time
/// ```
pub fn scattered(n: u64) -> Vec<u64> {
    let mut keys: Vec<u64> = (0..n).collect();
    let mut state = SEED;
    for i in (1..keys.len()).rev() {
        // `i + 1` is at most `n`, so the modulo's bias (below 2^-40 for any n here) is
        // irrelevant to a benchmark's key order.
        let j = (splitmix64(&mut state) % (i as u64 + 1)) as usize;
        keys.swap(i, j);
    }
    keys
}

/// The value stored under `key`: its little-endian bytes, then the bytes of `!key` and of
/// `key.rotate_left(32)`, so every value differs from every other.
///
/// ```
/// # use pmem_files_bench::keys::value_of;
/// assert_eq!(&value_of(7)[..8], &7u64.to_le_bytes());
/// assert_ne!(value_of(7), value_of(8));
/// ```
pub fn value_of(key: u64) -> Value {
    let mut v = [0u8; VALUE_LEN];
    v[..8].copy_from_slice(&key.to_le_bytes());
    v[8..16].copy_from_slice(&(!key).to_le_bytes());
    v[16..].copy_from_slice(&key.rotate_left(32).to_le_bytes());
    v
}

/// One step of splitmix64.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

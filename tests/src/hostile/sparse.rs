//! A compact file form for pool images kept as regression inputs: pools are mostly zeros, so
//! only the 64-byte blocks holding anything are stored.
//!
//! ```text
//! "PMEMSPRS" | length u64 | (block offset u64 | 64 bytes)...
//! ```

const MAGIC: &[u8; 8] = b"PMEMSPRS";
const BLOCK: usize = 64;

/// The sparse form of `bytes`.
pub fn encode(bytes: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    for (i, block) in bytes.chunks(BLOCK).enumerate() {
        if block.iter().any(|&b| b != 0) {
            out.extend_from_slice(&((i * BLOCK) as u64).to_le_bytes());
            let mut full = [0u8; BLOCK];
            full[..block.len()].copy_from_slice(block);
            out.extend_from_slice(&full);
        }
    }
    out
}

/// The image a file holds: decoded if it is in sparse form, else the bytes themselves.
pub fn decode(file: &[u8]) -> Vec<u8> {
    if file.len() < 16 || &file[..8] != MAGIC {
        return file.to_vec();
    }
    let len = u64::from_le_bytes(file[8..16].try_into().expect("8 bytes")) as usize;
    let mut out = vec![0u8; len];
    for rec in file[16..].chunks_exact(8 + BLOCK) {
        let at = u64::from_le_bytes(rec[..8].try_into().expect("8 bytes")) as usize;
        let end = (at + BLOCK).min(len);
        if at < end {
            out[at..end].copy_from_slice(&rec[8..8 + end - at]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips() {
        let mut v = vec![0u8; 1000];
        v[3] = 1;
        v[999] = 7;
        assert_eq!(super::decode(&super::encode(&v)), v);
        assert_eq!(super::decode(b"plain"), b"plain");
    }
}

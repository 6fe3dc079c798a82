//! `PString` and `PBytes` on damaged pool bytes: invalid UTF-8 and a length past the buffer
//! give typed errors, never a panic.

use pmem_collections::{Error, Inconsistency, PBytes, PString};
use pmem_core::{Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    s: PString,
}

fn pool_with(s: &str) -> (Pool<Root>, PString) {
    let pool = Pool::<Root>::builder().create_simulated(2 << 20).unwrap();
    let h = pool
        .transaction(|tx| {
            let h = PString::from_str(tx, s)?;
            tx.root_mut().set_s(h)?;
            Ok::<_, Error>(h)
        })
        .unwrap();
    (pool, h)
}

#[test]
fn invalid_utf8_is_a_typed_error() {
    let (pool, s) = pool_with("héllo");
    // Cut "é" in half: the bytes underneath are fine, the string is not.
    pool.transaction(|tx| s.as_bytes().truncate(tx, 2)).unwrap();
    let e = pool.read(|r| s.as_str(r).map(drop)).unwrap().unwrap_err();
    assert!(
        matches!(
            e,
            Error::Inconsistent(Inconsistency::InvalidUtf8 { valid_up_to: 1 })
        ),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "container is inconsistent: string is not UTF-8 after its first 1 bytes"
    );
    let e = pool.transaction(|tx| s.pop(tx)).unwrap_err();
    assert!(matches!(
        e,
        Error::Inconsistent(Inconsistency::InvalidUtf8 { .. })
    ));
    let e = pool.transaction(|tx| s.truncate(tx, 1)).unwrap_err();
    assert!(matches!(
        e,
        Error::Inconsistent(Inconsistency::InvalidUtf8 { .. })
    ));
    // Bytes written over the buffer by hand, any values at all.
    pool.transaction(|tx| {
        let data = tx.get(s.as_bytes().meta_ptr())?.data;
        tx.get_slice_mut(data)?.fill(0xff);
        Ok::<_, pmem_core::Error>(())
    })
    .unwrap();
    let e = pool.read(|r| s.as_str(r).map(drop)).unwrap().unwrap_err();
    assert!(matches!(
        e,
        Error::Inconsistent(Inconsistency::InvalidUtf8 { valid_up_to: 0 })
    ));
    assert_eq!(
        pool.read(|r| s.as_bytes().to_vec(r)).unwrap().unwrap(),
        [0xff, 0xff]
    );
}

#[test]
fn a_length_past_the_buffer() {
    let (pool, s) = pool_with("abc");
    let bytes: PBytes = s.as_bytes();
    pool.transaction(|tx| tx.edit(bytes.meta_ptr())?.set_len(u64::MAX))
        .unwrap();
    let expected = |e: &Error| {
        matches!(
            e,
            Error::Inconsistent(Inconsistency::LenExceedsCapacity {
                len: u64::MAX,
                capacity: 3
            })
        )
    };
    let reads = pool
        .read(|r| {
            [
                s.as_str(r).map(drop),
                s.len(r).map(drop),
                bytes.as_slice(r).map(drop),
            ]
        })
        .unwrap();
    for e in reads {
        assert!(expected(&e.unwrap_err()));
    }
    for e in [
        pool.transaction(|tx| s.push_str(tx, "d")),
        pool.transaction(|tx| bytes.extend_from_slice(tx, b"d")),
        pool.transaction(|tx| bytes.reserve(tx, 10)),
        pool.transaction(|tx| bytes.pop(tx).map(drop)),
    ] {
        assert!(expected(&e.unwrap_err()));
    }
}

#[test]
fn cutting_inside_a_character_is_a_typed_error() {
    let (pool, s) = pool_with("€");
    let e = pool.transaction(|tx| s.truncate(tx, 1)).unwrap_err();
    assert!(matches!(e, Error::NotCharBoundary { index: 1 }));
    assert_eq!(pool.read(|r| s.len(r)).unwrap().unwrap(), 3);
}

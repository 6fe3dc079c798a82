//! Every way opening or creating a pool file can fail, each produced on a real file: the error
//! variant, its message (which must name the file and the cause), that a failed open leaves the
//! file byte-for-byte as it was, and that a valid pool still opens with its data afterwards.

use std::fs;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use pmem_core::error::{InvalidArgument, TypeDifference};
use pmem_core::{Error, PPtr, Persistent, Pool};
use pmem_tests::child;
use pmem_tests::rng::Rng;

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
    head: PPtr<Node>,
}

#[derive(Persistent)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

/// A root with the same fields as [`Root`] under another type name.
#[derive(Persistent)]
#[repr(C)]
struct Other {
    count: u64,
    head: PPtr<Node>,
}

/// Variants of [`Root`] under the same type name, as a program changed since the pool was made.
#[allow(dead_code)]
mod changed {
    use super::Node;
    use pmem_core::{PPtr, Persistent};

    pub mod renamed {
        use super::*;
        #[derive(Persistent)]
        #[repr(C)]
        pub struct Root {
            pub total: u64,
            pub head: PPtr<Node>,
        }
    }

    pub mod retyped {
        use super::*;
        #[derive(Persistent)]
        #[repr(C)]
        pub struct Root {
            pub count: i64,
            pub head: PPtr<Node>,
        }
    }

    pub mod pointer_to_integer {
        use super::*;
        #[derive(Persistent)]
        #[repr(C)]
        pub struct Root {
            pub count: u64,
            pub head: u64,
        }
    }

    pub mod added {
        use super::*;
        #[derive(Persistent)]
        #[repr(C)]
        pub struct Root {
            pub count: u64,
            pub head: PPtr<Node>,
            pub extra: u64,
        }
    }

    pub mod removed {
        use super::*;
        #[derive(Persistent)]
        #[repr(C)]
        pub struct Root {
            pub count: u64,
        }
    }
}

const SIZE: u64 = 1 << 20;
const COUNT: u64 = 3;
/// Values pushed onto the list in this order; the list reads them back reversed.
const VALUES: [u64; 3] = [10, 20, 30];

// On-media header facts (pmem-core/src/layout/header.rs), checked by `header_layout_is_as_documented`.
const HEADER: u64 = 4096;
const COPY_B: u64 = HEADER;
const MAJOR: usize = 8;
const MINOR: usize = 10;
const INCOMPAT: usize = 16;
const RO_COMPAT: usize = 24;
const COMPAT: usize = 32;
const UUID: usize = 40;
const RUN_ID: usize = 64;
const POOL_SIZE: usize = 72;
const LOG_OFFSET: usize = 80;
const ROOT_OFFSET: usize = 104;
const CHUNK_TABLE_OFFSET: usize = 128;
const HEAP_OFFSET: usize = 136;
const CHUNK_COUNT: usize = 152;
const LAYOUT_NAME: usize = 160;
const ROOT_TYPE: usize = 224;
const CHECKSUM: usize = 4088;

// ---------------------------------------------------------------------------------------------
// Helpers

/// A test's temporary directory, and its place among tests that start processes
/// ([`child::spawning`]).
struct Dir {
    tmp: tempfile::TempDir,
    _lock: child::SpawnLock,
}

impl Dir {
    fn path(&self) -> &Path {
        self.tmp.path()
    }
}

/// The directory of a test that starts no process.
fn tempdir() -> Dir {
    let lock = child::not_spawning();
    Dir {
        tmp: tempfile::tempdir().expect("create a temporary directory"),
        _lock: lock,
    }
}

/// The directory of a test that starts processes.
fn spawning_tempdir() -> Dir {
    let lock = child::spawning();
    Dir {
        tmp: tempfile::tempdir().expect("create a temporary directory"),
        _lock: lock,
    }
}

/// Creates a pool at `path` holding `COUNT` and a list of `VALUES`, and closes it.
fn make_pool(path: &Path) {
    make_pool_with(
        path,
        Pool::<Root>::create(path, SIZE).expect("create the pool"),
    );
}

fn make_pool_with(path: &Path, pool: Pool<Root>) {
    pool.transaction(|tx| -> pmem_core::Result<_> {
        tx.root_mut().set_count(COUNT)?;
        for value in VALUES {
            let next = tx.root().head;
            let node = tx.alloc(Node { value, next })?;
            tx.root_mut().set_head(node)?;
        }
        Ok(())
    })
    .unwrap_or_else(|e| panic!("fill {}: {e}", path.display()));
}

/// The root count and the list's values, in list order.
fn contents(pool: &Pool<Root>) -> (u64, Vec<u64>) {
    pool.read(|r| {
        let mut values = Vec::new();
        let mut p = r.root().head;
        while !p.is_null() && values.len() < 1000 {
            let node = r.get(p).expect("a list pointer the pool wrote itself");
            values.push(node.value);
            p = node.next;
        }
        (r.root().count, values)
    })
    .unwrap()
}

fn expected_contents() -> (u64, Vec<u64>) {
    (COUNT, VALUES.iter().rev().copied().collect())
}

/// Opens the pool at `path` as [`Root`] and checks it holds what [`make_pool`] wrote.
fn assert_intact(path: &Path) {
    let pool = Pool::<Root>::open(path)
        .unwrap_or_else(|e| panic!("the pool should still open after the error: {e}"));
    assert_eq!(
        contents(&pool),
        expected_contents(),
        "data of {}",
        path.display()
    );
}

/// Checks that `err`'s message names the file at `path` and contains every word of `cause`.
fn assert_message(err: &Error, path: &Path, cause: &[&str]) {
    let msg = err.to_string();
    let file = format!("pool file {}", path.display());
    assert!(msg.contains(&file), "message does not name `{file}`: {msg}");
    for word in cause {
        assert!(msg.contains(word), "message lacks {word:?}: {msg}");
    }
}

/// Checks that the file at `path` holds exactly `before`.
fn assert_unchanged(path: &Path, before: &[u8], what: &str) {
    let now = fs::read(path).expect("read the file back");
    assert_eq!(now.len(), before.len(), "{what}: the file's length changed");
    if let Some(i) = (0..now.len()).find(|&i| now[i] != before[i]) {
        panic!(
            "{what}: the failed open modified the file at offset {i} ({:#04x} -> {:#04x})",
            before[i], now[i]
        );
    }
}

fn read_bytes(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    fs::File::open(path)
        .and_then(|f| f.read_exact_at(&mut buf, offset))
        .expect("read the pool file");
    buf
}

fn write_bytes(path: &Path, offset: u64, bytes: &[u8]) {
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.write_all_at(bytes, offset))
        .expect("write the pool file");
}

/// Inverts every bit of the byte at `offset`.
fn flip(path: &Path, offset: u64) {
    let b = read_bytes(path, offset, 1)[0];
    write_bytes(path, offset, &[!b]);
}

fn header(path: &Path, copy: u64) -> Vec<u8> {
    read_bytes(path, copy * HEADER, HEADER as usize)
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap())
}

/// Recomputes the checksum of a header copy after its fields were edited.
fn seal(header: &mut [u8]) {
    let sum = xxh3_64(&header[..CHECKSUM]);
    header[CHECKSUM..].copy_from_slice(&sum.to_le_bytes());
}

/// Applies `edit` to both header copies and reseals them, so the copies are valid and agree.
fn edit_headers(path: &Path, edit: impl Fn(&mut [u8])) {
    for copy in [0, 1] {
        let mut h = header(path, copy);
        edit(&mut h);
        seal(&mut h);
        write_bytes(path, copy * HEADER, &h);
    }
}

fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().expect("run `id -u`");
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// XXH3-64 (seed 0, default secret) of an input longer than 240 bytes, the hash that seals the
/// header. Written out here because this crate does not depend on `xxhash-rust`;
/// `header_layout_is_as_documented` checks it against checksums the library wrote.
fn xxh3_64(input: &[u8]) -> u64 {
    const SECRET: [u8; 192] = [
        0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad,
        0x1c, 0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3,
        0x67, 0x1f, 0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc,
        0xff, 0x72, 0x21, 0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6,
        0x81, 0x3a, 0x26, 0x4c, 0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65,
        0x8b, 0x1b, 0x53, 0x2e, 0xa3, 0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19,
        0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8, 0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9,
        0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d, 0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31,
        0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64, 0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb,
        0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb, 0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0,
        0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e, 0x2b, 0x16, 0xbe, 0x58, 0x7d,
        0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce, 0x45, 0xcb, 0x3a, 0x8f,
        0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
    ];
    const P32_1: u64 = 0x9E37_79B1;
    const P32_2: u64 = 0x85EB_CA77;
    const P32_3: u64 = 0xC2B2_AE3D;
    const P64_1: u64 = 0x9E37_79B1_85EB_CA87;
    const P64_2: u64 = 0xC2B2_AE3D_27D4_EB4F;
    const P64_3: u64 = 0x1656_67B1_9E37_79F9;
    const P64_4: u64 = 0x85EB_CA77_C2B2_AE63;
    const P64_5: u64 = 0x27D4_EB2F_1656_67C5;
    const STRIPE: usize = 64;
    const STRIPES_PER_BLOCK: usize = (SECRET.len() - STRIPE) / 8;
    const BLOCK: usize = STRIPE * STRIPES_PER_BLOCK;

    fn read(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }
    fn accumulate(acc: &mut [u64; 8], input: &[u8], secret: &[u8]) {
        for i in 0..8 {
            let data = read(input, 8 * i);
            let key = data ^ read(secret, 8 * i);
            acc[i ^ 1] = acc[i ^ 1].wrapping_add(data);
            acc[i] = acc[i].wrapping_add((key & 0xffff_ffff).wrapping_mul(key >> 32));
        }
    }
    fn scramble(acc: &mut [u64; 8], secret: &[u8]) {
        for (i, a) in acc.iter_mut().enumerate() {
            let v = (*a ^ (*a >> 47)) ^ read(secret, 8 * i);
            *a = v.wrapping_mul(P32_1);
        }
    }

    assert!(input.len() > 240, "only the long-input path is written out");
    let mut acc = [P32_3, P64_1, P64_2, P64_3, P64_4, P32_2, P64_5, P32_1];
    let blocks = (input.len() - 1) / BLOCK;
    for b in 0..blocks {
        for s in 0..STRIPES_PER_BLOCK {
            accumulate(&mut acc, &input[b * BLOCK + s * STRIPE..], &SECRET[s * 8..]);
        }
        scramble(&mut acc, &SECRET[SECRET.len() - STRIPE..]);
    }
    let stripes = (input.len() - 1 - blocks * BLOCK) / STRIPE;
    for s in 0..stripes {
        accumulate(
            &mut acc,
            &input[blocks * BLOCK + s * STRIPE..],
            &SECRET[s * 8..],
        );
    }
    accumulate(
        &mut acc,
        &input[input.len() - STRIPE..],
        &SECRET[SECRET.len() - STRIPE - 7..],
    );
    let mut h = (input.len() as u64).wrapping_mul(P64_1);
    for i in 0..4 {
        let lo = acc[2 * i] ^ read(&SECRET, 11 + 16 * i);
        let hi = acc[2 * i + 1] ^ read(&SECRET, 11 + 16 * i + 8);
        let m = lo as u128 * hi as u128;
        h = h.wrapping_add(m as u64 ^ (m >> 64) as u64);
    }
    h ^= h >> 37;
    h = h.wrapping_mul(0x1656_6791_9E37_79F9);
    h ^ (h >> 32)
}

// ---------------------------------------------------------------------------------------------
// The format facts the other tests rely on

#[test]
fn header_layout_is_as_documented() {
    let dir = tempdir();
    let path = dir.path().join("layout.pool");
    let pool = Pool::<Root>::builder()
        .layout("layout-check")
        .create(&path, SIZE)
        .unwrap();
    let info = pool.info().clone();
    drop(pool);
    let a = header(&path, 0);
    let b = header(&path, 1);
    assert_eq!(a, b, "the two header copies of a closed pool agree");
    assert_eq!(&a[..8], b"PMEMPOOL");
    assert_eq!((u16_at(&a, MAJOR), u16_at(&a, MINOR)), info.version);
    assert_eq!(&a[UUID..UUID + 16], &info.uuid);
    assert_eq!(u64_at(&a, RUN_ID), info.run_id);
    assert_eq!(u64_at(&a, POOL_SIZE), SIZE);
    assert_eq!(u64_at(&a, POOL_SIZE), info.pool_size);
    assert_eq!(&a[LAYOUT_NAME..LAYOUT_NAME + 13], b"layout-check\0");
    assert_eq!(&a[ROOT_TYPE + 1..ROOT_TYPE + 5], b"Root");
    // Bits 0 and 1 of the incompatible features: the logs may hold redo entries (format 3.1),
    // and commit records a write inline (3.2).
    assert_eq!(
        u64_at(&a, INCOMPAT),
        3,
        "incompatible features of a new pool"
    );
    for at in [RO_COMPAT, COMPAT] {
        assert_eq!(u64_at(&a, at), 0, "feature flags at {at} of a new pool");
    }
    assert_eq!(
        u64_at(&a, CHECKSUM),
        xxh3_64(&a[..CHECKSUM]),
        "this test's XXH3 reproduces the header checksum"
    );
    // And on a second, different header (another open bumps the run id).
    drop(Pool::<Root>::open(&path).unwrap());
    let a2 = header(&path, 0);
    assert_ne!(a2, a);
    assert_eq!(u64_at(&a2, CHECKSUM), xxh3_64(&a2[..CHECKSUM]));
}

// ---------------------------------------------------------------------------------------------
// Files that are missing, in the way, or the wrong size

#[test]
fn open_missing_file_is_not_found() {
    let dir = tempdir();
    for path in [
        dir.path().join("missing.pool"),
        dir.path().join("no-such-dir").join("missing.pool"),
    ] {
        let err = Pool::<Root>::open(&path).expect_err("open a missing file");
        assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
        assert_message(&err, &path, &["no such file"]);
        assert!(!path.exists(), "a failed open must not create the file");
    }
}

#[test]
fn create_over_existing_file_is_already_exists() {
    let dir = tempdir();

    // Over a pool: refused, and the pool is untouched.
    let path = dir.path().join("existing.pool");
    make_pool(&path);
    let before = fs::read(&path).unwrap();
    let err = Pool::<Root>::create(&path, SIZE).expect_err("create over a pool");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_message(&err, &path, &["already exists"]);
    assert_unchanged(&path, &before, "create over a pool");
    assert_intact(&path);

    // Over a pool that is open: refused, and the open handle keeps working.
    let pool = Pool::<Root>::open(&path).unwrap();
    let err = Pool::<Root>::create(&path, SIZE).expect_err("create over an open pool");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_eq!(contents(&pool), expected_contents());
    drop(pool);
    assert_intact(&path);

    // Over some other file: refused, and the file is neither changed nor removed.
    let other = dir.path().join("notes.txt");
    fs::write(&other, b"not a pool, and not to be clobbered\n").unwrap();
    let err = Pool::<Root>::create(&other, SIZE).expect_err("create over a text file");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_message(&err, &other, &["already exists"]);
    assert_unchanged(
        &other,
        b"not a pool, and not to be clobbered\n",
        "create over a file",
    );
}

#[test]
fn create_below_minimum_is_too_small() {
    let dir = tempdir();
    let path = dir.path().join("small.pool");
    let minimum = match Pool::<Root>::create(&path, 4096).expect_err("a 4 KiB pool") {
        Error::TooSmall { size, minimum, .. } => {
            assert_eq!(size, 4096);
            minimum
        }
        other => panic!("expected TooSmall, got {other:?}"),
    };
    assert!(minimum > 2 * HEADER, "minimum {minimum}");
    for size in [0, 1, 2 * HEADER, minimum - 1] {
        let err = Pool::<Root>::create(&path, size).expect_err("a pool below the minimum");
        match &err {
            Error::TooSmall {
                size: s,
                minimum: m,
                ..
            } => assert_eq!((*s, *m), (size, minimum)),
            other => panic!("size {size}: expected TooSmall, got {other:?}"),
        }
        assert_message(
            &err,
            &path,
            &[
                &format!("size {size} bytes"),
                &format!("minimum pool size of {minimum} bytes"),
            ],
        );
        assert!(!path.exists(), "a refused create must leave no file");
    }
    // The minimum itself is accepted, and the pool works.
    make_pool_with(&path, Pool::<Root>::create(&path, minimum).unwrap());
    assert_intact(&path);
}

#[test]
fn file_smaller_than_two_headers_is_too_short() {
    let dir = tempdir();
    for len in [0usize, 100, 2 * HEADER as usize - 1] {
        let path = dir.path().join(format!("tiny-{len}.pool"));
        let mut bytes = vec![0u8; len];
        // Even with the magic in place it is not a pool.
        if len >= 8 {
            bytes[..8].copy_from_slice(b"PMEMPOOL");
        }
        fs::write(&path, &bytes).unwrap();
        let err = Pool::<Root>::open(&path).expect_err("open a tiny file");
        match &err {
            Error::FileTooShort { size, needed, .. } => {
                assert_eq!((*size, *needed), (len as u64, 2 * HEADER))
            }
            other => panic!("{len} bytes: expected FileTooShort, got {other:?}"),
        }
        assert_message(
            &err,
            &path,
            &["not a pmem pool", &format!("{len} bytes"), "pool header"],
        );
        assert_unchanged(&path, &bytes, "open a tiny file");
    }
}

#[test]
fn truncated_pool_is_truncated() {
    let dir = tempdir();
    let path = dir.path().join("truncated.pool");
    make_pool(&path);
    for len in [SIZE - 1, SIZE / 2, 2 * HEADER] {
        let full = fs::read(&path).unwrap();
        fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_len(len))
            .unwrap();
        let err = Pool::<Root>::open(&path).expect_err("open a truncated pool");
        match &err {
            Error::Truncated {
                expected, actual, ..
            } => assert_eq!((*expected, *actual), (SIZE, len)),
            other => panic!("length {len}: expected Truncated, got {other:?}"),
        }
        assert_message(
            &err,
            &path,
            &["truncated", &SIZE.to_string(), &len.to_string()],
        );
        assert_unchanged(&path, &full[..len as usize], "open a truncated pool");
        // Put the lost bytes back: the pool opens with its data.
        fs::write(&path, &full).unwrap();
        assert_intact(&path);
    }

    // A file longer than the pool is fine: the pool is the first `pool_size` bytes.
    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(SIZE + 12345))
        .unwrap();
    assert_intact(&path);
    let pool = Pool::<Root>::open(&path).unwrap();
    assert_eq!(pool.info().pool_size, SIZE);
}

#[test]
fn non_pool_files_are_bad_magic() {
    let dir = tempdir();
    let mut rng = Rng(0x5eed_ba5e);
    let mut random = vec![0u8; SIZE as usize];
    rng.fill(&mut random);
    let text = "Lorem ipsum dolor sit amet.\n".repeat(1000).into_bytes();
    for (name, bytes) in [
        ("zeros", vec![0u8; SIZE as usize]),
        ("random", random),
        ("text", text),
    ] {
        let path = dir.path().join(format!("{name}.bin"));
        fs::write(&path, &bytes).unwrap();
        let err = Pool::<Root>::open(&path).expect_err("open a file that is not a pool");
        assert!(matches!(err, Error::BadMagic { .. }), "{name}: {err:?}");
        assert_message(&err, &path, &["not a pmem pool", "magic"]);
        assert_unchanged(&path, &bytes, name);
    }
}

#[test]
fn unusual_paths_are_errors_naming_the_path() {
    let dir = tempdir();
    // A directory where the pool should be.
    let err = Pool::<Root>::open(dir.path()).expect_err("open a directory");
    assert_message(&err, dir.path(), &[]);
    let sub = dir.path().join("subdir");
    fs::create_dir(&sub).unwrap();
    let err = Pool::<Root>::create(&sub, SIZE).expect_err("create over a directory");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");
    assert_message(&err, &sub, &["already exists"]);
    assert!(sub.is_dir(), "the directory is left alone");

    // A path through a regular file.
    let file = dir.path().join("plain");
    fs::write(&file, b"x").unwrap();
    let under = file.join("p.pool");
    let err = Pool::<Root>::open(&under).expect_err("open under a file");
    assert_message(&err, &under, &[]);
    let err = Pool::<Root>::create(&under, SIZE).expect_err("create under a file");
    assert_message(&err, &under, &[]);
    assert_eq!(fs::read(&file).unwrap(), b"x");
}

// ---------------------------------------------------------------------------------------------
// Damaged headers

/// Offsets within a header copy to damage: magic, version, UUID, pool size, layout name, root
/// type, reserved bytes, checksum.
const DAMAGE: [usize; 8] = [
    0,
    MAJOR,
    UUID + 3,
    POOL_SIZE,
    LAYOUT_NAME,
    ROOT_TYPE + 2,
    3900,
    4090,
];

/// Damages one byte of header copy `bad` at each offset in [`DAMAGE`] in turn and checks the
/// pool opens from the other copy with its data, and that the bad copy is rewritten from it.
fn damaged_copy_is_repaired(bad: u64) {
    let dir = tempdir();
    let path = dir.path().join("repair.pool");
    make_pool(&path);
    for at in DAMAGE {
        let good = header(&path, 1 - bad);
        assert_eq!(good, header(&path, bad), "the copies agree before damage");
        flip(&path, bad * HEADER + at as u64);
        assert_ne!(header(&path, bad), good);

        let pool = Pool::<Root>::open(&path)
            .unwrap_or_else(|e| panic!("copy {bad} damaged at {at}: open failed: {e}"));
        assert_eq!(contents(&pool), expected_contents(), "damage at {at}");
        assert_eq!(&pool.info().uuid[..], &good[UUID..UUID + 16]);
        // Repaired at open: both copies are the good one, with the run id bumped.
        let (a, b) = (header(&path, 0), header(&path, 1));
        assert_eq!(a, b, "copy {bad} damaged at {at}: not repaired at open");
        assert_eq!(u64_at(&a, RUN_ID), u64_at(&good, RUN_ID) + 1);
        assert_eq!(u64_at(&a, RUN_ID), pool.info().run_id);
        let mut expect = good.clone();
        expect[RUN_ID..RUN_ID + 8].copy_from_slice(&a[RUN_ID..RUN_ID + 8]);
        seal(&mut expect);
        assert_eq!(
            a, expect,
            "the repaired copy is the good copy plus the new run id"
        );
        drop(pool);
        assert_eq!(header(&path, 0), header(&path, 1), "after close");
    }
    assert_intact(&path);
}

#[test]
fn damaged_header_copy_a_is_repaired_from_b() {
    damaged_copy_is_repaired(0);
}

#[test]
fn damaged_header_copy_b_is_repaired_from_a() {
    damaged_copy_is_repaired(1);
}

#[test]
fn both_header_copies_damaged_is_header_corrupt() {
    let dir = tempdir();
    let path = dir.path().join("corrupt.pool");
    make_pool(&path);
    let pristine = fs::read(&path).unwrap();
    // (offset in A, offset in B): checksums, fields, magic of one copy only.
    for (at_a, at_b) in [
        (4090, 4090),
        (UUID, POOL_SIZE),
        (0, LAYOUT_NAME),
        (ROOT_TYPE, 0),
    ] {
        fs::write(&path, &pristine).unwrap();
        flip(&path, at_a as u64);
        flip(&path, COPY_B + at_b as u64);
        let before = fs::read(&path).unwrap();
        let err = Pool::<Root>::open(&path).expect_err("open with both headers damaged");
        assert!(
            matches!(err, Error::HeaderCorrupt { .. }),
            "damage at A+{at_a}, B+{at_b}: {err:?}"
        );
        assert_message(&err, &path, &["both copies", "header", "corrupt"]);
        assert_unchanged(&path, &before, "open with both headers damaged");
        // Mending either copy by hand brings the pool back with its data.
        write_bytes(&path, 0, &pristine[..HEADER as usize]);
        assert_intact(&path);
    }

    // With the magic gone from both copies it no longer claims to be a pool at all.
    fs::write(&path, &pristine).unwrap();
    flip(&path, 0);
    flip(&path, COPY_B);
    let err = Pool::<Root>::open(&path).expect_err("open with both magics damaged");
    assert!(matches!(err, Error::BadMagic { .. }), "{err:?}");
    assert_message(&err, &path, &["magic"]);
}

#[test]
fn newer_major_version_is_unsupported() {
    let dir = tempdir();
    let path = dir.path().join("version.pool");
    make_pool(&path);
    let pristine = fs::read(&path).unwrap();
    let minor = u16_at(&pristine, MINOR);
    for major in [1u16, 2, 4, 0, u16::MAX] {
        fs::write(&path, &pristine).unwrap();
        edit_headers(&path, |h| {
            h[MAJOR..MAJOR + 2].copy_from_slice(&major.to_le_bytes())
        });
        let before = fs::read(&path).unwrap();
        let err = Pool::<Root>::open(&path).expect_err("open a pool of another major version");
        match &err {
            Error::UnsupportedVersion {
                major: m,
                minor: n,
                supported_major,
                ..
            } => {
                assert_eq!((*m, *n), (major, minor));
                assert_eq!(*supported_major, 3);
            }
            other => panic!("major {major}: expected UnsupportedVersion, got {other:?}"),
        }
        assert_message(
            &err,
            &path,
            &[&format!("version {major}.{minor}"), "not supported", "3.x"],
        );
        assert_unchanged(&path, &before, "open a pool of another major version");
    }
    fs::write(&path, &pristine).unwrap();
    assert_intact(&path);
}

#[test]
fn unknown_incompatible_feature_is_unsupported() {
    let dir = tempdir();
    let path = dir.path().join("incompat.pool");
    make_pool(&path);
    let pristine = fs::read(&path).unwrap();
    // Bits 0 and 1 (redo entries, inline writes) are known; any other is not, alone or beside
    // them.
    for bits in [1u64 << 2, 1 << 17, 1 << 63, 1 | 1 << 5, 3 | 1 << 2] {
        let bit = bits.trailing_zeros();
        fs::write(&path, &pristine).unwrap();
        edit_headers(&path, |h| {
            h[INCOMPAT..INCOMPAT + 8].copy_from_slice(&bits.to_le_bytes())
        });
        let before = fs::read(&path).unwrap();
        let err = Pool::<Root>::open(&path).expect_err("open with an unknown incompat feature");
        assert!(
            matches!(err, Error::UnsupportedFeatures { .. }),
            "bit {bit}: {err:?}"
        );
        assert_message(&err, &path, &["not supported"]);
        assert_unchanged(&path, &before, "open with an unknown incompat feature");
    }
    fs::write(&path, &pristine).unwrap();
    assert_intact(&path);
}

/// A feature in `ro_compat_features` is one "a reader must understand to write the pool". This
/// library opens every pool for writing (it rewrites the header at open and may run recovery),
/// so it must refuse a pool with a read-only-compatible feature it does not know, and leave the
/// file alone.
#[test]
fn unknown_ro_compat_feature_is_refused_for_writing() {
    let dir = tempdir();
    let path = dir.path().join("ro-compat.pool");
    make_pool(&path);
    edit_headers(&path, |h| {
        h[RO_COMPAT..RO_COMPAT + 8].copy_from_slice(&1u64.to_le_bytes())
    });
    let before = fs::read(&path).unwrap();
    let result = Pool::<Root>::open(&path);
    let opened = result.is_ok();
    drop(result);
    let now = fs::read(&path).unwrap();
    assert!(
        !opened,
        "a pool with an unknown ro_compat feature (bit 0) was opened for writing"
    );
    assert!(now == before, "the refused open modified the file");
}

#[test]
fn newer_minor_version_and_compatible_features_open() {
    let dir = tempdir();
    let path = dir.path().join("minor.pool");
    make_pool(&path);
    let major = u16_at(&header(&path, 0), MAJOR);
    let minor = u16_at(&header(&path, 0), MINOR) + 1;
    edit_headers(&path, |h| {
        h[MINOR..MINOR + 2].copy_from_slice(&minor.to_le_bytes());
        h[COMPAT..COMPAT + 8].copy_from_slice(&u64::MAX.to_le_bytes());
    });
    let pool = Pool::<Root>::open(&path).expect("a newer minor version is compatible");
    assert_eq!(contents(&pool), expected_contents());
    assert_eq!(pool.info().version, (major, minor));
    drop(pool);
    let h = header(&path, 0);
    assert_eq!(
        u16_at(&h, MINOR),
        minor,
        "the minor version is kept, not lowered"
    );
    assert_eq!(u64_at(&h, COMPAT), u64::MAX, "compat features are kept");
}

// ---------------------------------------------------------------------------------------------
// The pool is not the one the program expects

/// Opens the pool at `path` (made by [`make_pool`]) as `R`, expects RootTypeMismatch from
/// `Root` to `expected`, a difference mentioning each of `difference`, and no change to the file.
fn expect_root_mismatch<R: Persistent>(
    path: &Path,
    expected: &str,
    difference: &[&str],
) -> TypeDifference {
    let before = fs::read(path).unwrap();
    let err = Pool::<R>::open(path).expect_err("open with another root type");
    let kind = match &err {
        Error::RootTypeMismatch {
            expected: e,
            found: f,
            difference: d,
            ..
        } => {
            assert_eq!((e.as_str(), f.as_str()), (expected, "Root"));
            let text = d.to_string();
            for word in difference {
                assert!(text.contains(word), "difference lacks {word:?}: {text}");
            }
            (**d).clone()
        }
        other => panic!("opened as {expected}: expected RootTypeMismatch, got {other:?}"),
    };
    let mut words = vec!["root type mismatch"];
    let expected_quoted = format!("`{expected}`");
    words.push(&expected_quoted);
    words.push("`Root`");
    words.extend_from_slice(difference);
    assert_message(&err, path, &words);
    assert_unchanged(path, &before, "open with another root type");
    eprintln!("{err}");
    kind
}

#[test]
fn wrong_root_type_is_root_type_mismatch() {
    let dir = tempdir();
    let path = dir.path().join("typed.pool");
    make_pool(&path);

    let d = expect_root_mismatch::<Other>(&path, "Other", &["named `Other`", "`Root`"]);
    assert!(
        matches!(&d, TypeDifference::Name { program, pool } if program == "Other" && pool == "Root"),
        "{d:?}"
    );
    let d = expect_root_mismatch::<changed::renamed::Root>(
        &path,
        "Root",
        &["field 0", "`total`", "`count`"],
    );
    assert!(
        matches!(&d, TypeDifference::FieldName { index: 0, program, pool } if program == "total" && pool == "count"),
        "{d:?}"
    );
    let d =
        expect_root_mismatch::<changed::retyped::Root>(&path, "Root", &["`count`", "i64", "u64"]);
    assert!(
        matches!(&d, TypeDifference::FieldLayout { index: 0, program, pool } if program.type_name == "i64" && pool.type_name == "u64"),
        "{d:?}"
    );
    expect_root_mismatch::<changed::pointer_to_integer::Root>(
        &path,
        "Root",
        &["`head`", "`u64`", "PPtr<Node>"],
    );
    let d = expect_root_mismatch::<changed::added::Root>(
        &path,
        "Root",
        &["`extra`", "in the program but not in the pool"],
    );
    assert!(
        matches!(&d, TypeDifference::FieldOnlyInProgram { field, .. } if field.name == "extra"),
        "{d:?}"
    );
    let d = expect_root_mismatch::<changed::removed::Root>(
        &path,
        "Root",
        &["`head`", "in the pool but not in the program"],
    );
    assert!(
        matches!(&d, TypeDifference::FieldOnlyInPool { field, .. } if field.name == "head"),
        "{d:?}"
    );
    // Plain types are described by their type names too.
    let before = fs::read(&path).unwrap();
    let err = Pool::<u64>::open(&path).expect_err("open with root u64");
    assert!(matches!(err, Error::RootTypeMismatch { .. }), "{err:?}");
    assert_message(&err, &path, &["root type mismatch", "u64", "Root"]);
    assert_unchanged(&path, &before, "open with root u64");

    assert_intact(&path);
}

#[test]
fn layout_name_mismatch() {
    let dir = tempdir();
    let path = dir.path().join("named.pool");
    make_pool_with(
        &path,
        Pool::<Root>::builder()
            .layout("alpha")
            .create(&path, SIZE)
            .unwrap(),
    );
    let before = fs::read(&path).unwrap();
    let err = Pool::<Root>::builder()
        .layout("beta")
        .open(&path)
        .expect_err("open with another layout name");
    match &err {
        Error::LayoutNameMismatch {
            expected, found, ..
        } => assert_eq!((expected.as_str(), found.as_str()), ("beta", "alpha")),
        other => panic!("expected LayoutNameMismatch, got {other:?}"),
    }
    assert_message(
        &err,
        &path,
        &["layout name mismatch", "\"beta\"", "\"alpha\""],
    );
    assert_unchanged(&path, &before, "open with another layout name");

    // The right name, or none, opens it.
    let pool = Pool::<Root>::builder().layout("alpha").open(&path).unwrap();
    assert_eq!(pool.info().layout_name, "alpha");
    drop(pool);
    assert_intact(&path);

    // A pool created without a name has the empty name.
    let unnamed = dir.path().join("unnamed.pool");
    make_pool(&unnamed);
    let err = Pool::<Root>::builder()
        .layout("alpha")
        .open(&unnamed)
        .expect_err("a name the pool was not created with");
    match &err {
        Error::LayoutNameMismatch { found, .. } => assert_eq!(found, ""),
        other => panic!("expected LayoutNameMismatch, got {other:?}"),
    }
    assert_message(&err, &unnamed, &["\"alpha\"", "\"\""]);
    assert_intact(&unnamed);
}

#[test]
fn invalid_layout_name_is_invalid_argument_naming_the_file() {
    let dir = tempdir();
    let path = dir.path().join("long-name.pool");
    let long = "x".repeat(64);
    let err = Pool::<Root>::builder()
        .layout(&long)
        .create(&path, SIZE)
        .expect_err("a 64-byte layout name");
    match &err {
        Error::InvalidArgument {
            argument: InvalidArgument::LayoutName { name, max },
            ..
        } => assert_eq!((name, *max), (&long, 63)),
        other => panic!("expected an invalid layout name, got {other:?}"),
    }
    assert!(!path.exists(), "no file for a refused create");
    let msg = err.to_string();
    assert!(msg.contains("63 bytes"), "{msg}");
    assert!(
        msg.contains(&format!("pool file {}", path.display())),
        "message does not name the file: {msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// The pool is in use

#[test]
fn second_open_in_this_process_is_pool_in_use() {
    let dir = tempdir();
    let path = dir.path().join("busy.pool");
    make_pool(&path);
    let first = Pool::<Root>::open(&path).unwrap();
    let before = fs::read(&path).unwrap();

    let err = Pool::<Root>::open(&path).expect_err("a second open");
    assert!(matches!(err, Error::PoolInUse { .. }), "{err:?}");
    assert_message(&err, &path, &["in use"]);
    let err = Pool::<Root>::open_or_create(&path, SIZE).expect_err("open_or_create");
    assert!(matches!(err, Error::PoolInUse { .. }), "{err:?}");
    assert_message(&err, &path, &["in use"]);
    let err = Pool::<Other>::open(&path).expect_err("a second open with another type");
    assert!(matches!(err, Error::PoolInUse { .. }), "{err:?}");
    assert_unchanged(&path, &before, "a refused second open");

    // The first handle is unaffected, and its writes are there at the next open.
    assert_eq!(contents(&first), expected_contents());
    first
        .transaction(|tx| {
            let n = tx.root().count;
            tx.root_mut().set_count(n + 1)
        })
        .unwrap();
    drop(first);
    let pool = Pool::<Root>::open(&path).expect("open after the first handle closed");
    assert_eq!(contents(&pool).0, COUNT + 1);
}

const HOLD_TEST: &str = "child_holds_pool";

/// Child side of `pool_held_by_another_process_is_pool_in_use`: opens the pool, adds 1 to the
/// count, reports, and holds the pool until the parent closes its stdin.
#[test]
fn child_holds_pool() {
    let Some((task, path)) = child::task() else {
        return;
    };
    assert_eq!(task, "hold");
    let pool = Pool::<Root>::open(&path).unwrap_or_else(|e| panic!("child open: {e}"));
    pool.transaction(|tx| {
        let n = tx.root().count;
        tx.root_mut().set_count(n + 1)
    })
    .unwrap();
    child::report("opened", contents(&pool).0);
    child::wait_for_parent();
    drop(pool);
    child::report("closed", "yes");
}

#[test]
fn pool_held_by_another_process_is_pool_in_use() {
    let dir = spawning_tempdir();
    let path = dir.path().join("shared.pool");
    make_pool(&path);
    let mut holder = child::Running::start(&mut child::command(HOLD_TEST, "hold", &path));
    assert_eq!(holder.wait_for("opened"), (COUNT + 1).to_string());

    let err = Pool::<Root>::open(&path).expect_err("open while another process holds it");
    assert!(matches!(err, Error::PoolInUse { .. }), "{err:?}");
    assert_message(&err, &path, &["in use", "another"]);
    let err = Pool::<Root>::create(&path, SIZE).expect_err("create over it");
    assert!(matches!(err, Error::AlreadyExists { .. }), "{err:?}");

    let out = holder.finish();
    out.assert_success();
    assert_eq!(out.expect_report("closed"), "yes");
    let pool = Pool::<Root>::open(&path).expect("open after the other process closed it");
    assert_eq!(
        contents(&pool).0,
        COUNT + 1,
        "the other process's write is there"
    );
}

/// Two openers racing `open_or_create` on a path where no pool exists yet: one creates the pool,
/// the other opens it or finds it in use. Neither may see a half-created file (an empty file is
/// `TooSmall`), and the race must not lose the pool. Threads race exactly as processes do: each
/// open has its own open file and `flock`.
#[test]
fn racing_open_or_create_never_sees_a_half_created_pool() {
    let dir = tempdir();
    let mut bad = Vec::new();
    let rounds = 1000;
    for round in 0..rounds {
        let path = dir.path().join(format!("race-{round}.pool"));
        let barrier = std::sync::Barrier::new(2);
        let outcomes: Vec<String> = std::thread::scope(|s| {
            let racers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        match Pool::<Root>::open_or_create(&path, SIZE) {
                            Ok(pool) => {
                                drop(pool);
                                "Ok".to_string()
                            }
                            Err(e @ Error::PoolInUse { .. }) => {
                                assert_message(&e, &path, &["in use"]);
                                "PoolInUse".to_string()
                            }
                            Err(e) => format!("{}: {e}", msg_kind(&e)),
                        }
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let valid = Pool::<Root>::open(&path).is_ok();
        let acceptable = outcomes.iter().all(|o| o == "Ok" || o == "PoolInUse")
            && outcomes.iter().any(|o| o == "Ok")
            && valid;
        if !acceptable {
            bad.push(format!(
                "round {round}: {outcomes:?}, {}",
                if valid {
                    "a valid pool is left"
                } else {
                    "no valid pool is left"
                }
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} of {rounds} rounds went wrong, e.g.:\n{}",
        bad.len(),
        bad.iter().take(5).cloned().collect::<Vec<_>>().join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Permission denied

/// Clears the immutable attribute it set when dropped, so the temporary directory can go.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    /// Sets the immutable attribute on `paths` (`chattr +i`); `None` if that is not possible.
    fn set(paths: &[&Path]) -> Option<Immutable> {
        let mut guard = Immutable(Vec::new());
        for p in paths {
            let ok = Command::new("chattr")
                .arg("+i")
                .arg(p)
                .output()
                .is_ok_and(|o| o.status.success());
            if !ok {
                return None;
            }
            guard.0.push(p.to_path_buf());
        }
        Some(guard)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for p in &self.0 {
            let _ = Command::new("chattr").arg("-i").arg(p).status();
        }
    }
}

const PERMISSION_TEST: &str = "child_without_permission";

/// Child side of `permission_denied_names_the_file`, run as an unprivileged user: tries to open
/// the pool (mode 0600, owned by root) and to create one beside it, and reports the errors.
#[test]
fn child_without_permission() {
    let Some((task, path)) = child::task() else {
        return;
    };
    assert_eq!(task, "open-and-create");
    let describe = |r: Result<Pool<Root>, Error>| match r {
        Ok(_) => "opened".to_string(),
        Err(e) => format!("{}|{e}", variant(&e)),
    };
    child::report("open", describe(Pool::<Root>::open(&path)));
    let beside = path.with_file_name("new.pool");
    child::report("create", describe(Pool::<Root>::create(&beside, SIZE)));
}

fn variant(e: &Error) -> &'static str {
    match e {
        Error::PermissionDenied { .. } => "PermissionDenied",
        Error::NotFound { .. } => "NotFound",
        Error::Io { .. } => "Io",
        _ => "other",
    }
}

fn expect_denied(err: &Error, path: &Path, what: &str) {
    assert!(
        matches!(err, Error::PermissionDenied { .. }),
        "{what}: {err:?}"
    );
    assert_message(err, path, &["permission denied"]);
}

/// The error for a pool the process may not open or create. Root ignores file modes, so as
/// root the test makes the case in two ways root cannot bypass: the immutable attribute
/// (`chattr +i`, refused with EPERM even to root), and a child process running as `nobody`.
/// It says so loudly for any way it cannot use.
#[test]
fn permission_denied_names_the_file() {
    let dir = spawning_tempdir();
    let path = dir.path().join("private.pool");
    make_pool(&path);
    let mut produced = 0;

    if !is_root() {
        fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
        let err = Pool::<Root>::open(&path).expect_err("open a mode-000 pool");
        expect_denied(&err, &path, "open a mode-000 pool");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let locked = dir.path().join("locked");
        fs::create_dir(&locked).unwrap();
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o555)).unwrap();
        let inside = locked.join("new.pool");
        let err = Pool::<Root>::create(&inside, SIZE).expect_err("create in a read-only dir");
        expect_denied(&err, &inside, "create in a mode-555 directory");
        fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
        assert_intact(&path);
        return;
    }

    // As root, file modes do not stop anything.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    let opened = Pool::<Root>::open(&path);
    assert!(
        opened.is_ok(),
        "root opens a mode-000 pool: {:?}",
        opened.err()
    );
    drop(opened);
    println!("note: running as root, which ignores file modes: a mode-000 pool opens");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();

    // 1. The immutable attribute.
    let frozen_dir = dir.path().join("frozen");
    fs::create_dir(&frozen_dir).unwrap();
    match Immutable::set(&[&path, &frozen_dir]) {
        Some(guard) => {
            let before = fs::read(&path).unwrap();
            let err = Pool::<Root>::open(&path).expect_err("open an immutable pool");
            expect_denied(&err, &path, "open an immutable pool");
            assert_unchanged(&path, &before, "open an immutable pool");
            let inside = frozen_dir.join("new.pool");
            let err = Pool::<Root>::create(&inside, SIZE).expect_err("create in an immutable dir");
            expect_denied(&err, &inside, "create in an immutable directory");
            assert!(!inside.exists());
            drop(guard);
            println!("checked as root: PermissionDenied for an immutable pool and directory");
            produced += 1;
        }
        None => println!(
            "NOT TESTED as root: `chattr +i` is unavailable here (no CAP_LINUX_IMMUTABLE, or \
             a file system without the immutable attribute)"
        ),
    }

    // 2. An unprivileged child process (uid/gid 65534, `nobody`).
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = child::command(PERMISSION_TEST, "open-and-create", &path);
    std::os::unix::process::CommandExt::uid(&mut cmd, 65534);
    std::os::unix::process::CommandExt::gid(&mut cmd, 65534);
    match child::try_run(&mut cmd) {
        Ok(out) => {
            out.assert_success();
            let beside = path.with_file_name("new.pool");
            for (key, file) in [("open", &path), ("create", &beside)] {
                let got = out.expect_report(key);
                let (kind, msg) = got
                    .split_once('|')
                    .unwrap_or_else(|| panic!("{key} as nobody: {got}"));
                assert_eq!(kind, "PermissionDenied", "{key} as nobody: {msg}");
                let file = format!("pool file {}", file.display());
                assert!(msg.contains(&file), "{key}: message lacks `{file}`: {msg}");
                assert!(msg.contains("permission denied"), "{key}: {msg}");
            }
            assert!(!beside.exists());
            println!("checked: PermissionDenied for open and create in a process of uid 65534");
            produced += 1;
        }
        Err(e) => println!("NOT TESTED as root: cannot start a process as uid 65534: {e}"),
    }

    if produced == 0 {
        println!(
            "NOT TESTED: PermissionDenied cannot be produced here: the process is root, \
             `chattr +i` is unavailable and it cannot drop to an unprivileged user"
        );
    }
    assert_intact(&path);
}

// ---------------------------------------------------------------------------------------------
// Robustness against arbitrary damage

#[derive(Persistent)]
#[repr(C)]
struct Big {
    words: [u64; 3000],
}

/// A small pool with a list in a run, a large object in a span, and a freed object.
fn make_fuzz_pool(path: &Path) {
    let minimum = match Pool::<Root>::create(path, 0) {
        Err(Error::TooSmall { minimum, .. }) => minimum,
        other => panic!("expected TooSmall, got {other:?}"),
    };
    let size = (2 * minimum).max(512 << 10);
    let pool = Pool::<Root>::create(path, size).expect("create the fuzz pool");
    pool.transaction(|tx| {
        tx.root_mut().set_count(7)?;
        for value in 0..40 {
            let next = tx.root().head;
            let node = tx.alloc(Node { value, next })?;
            tx.root_mut().set_head(node)?;
        }
        let big = tx.alloc(Big { words: [9; 3000] })?;
        let gone = tx.alloc(Node {
            value: 1,
            next: big.cast(),
        })?;
        tx.free(gone)
    })
    .unwrap();
    // A second transaction so the log holds more than one generation.
    pool.transaction(|tx| tx.root_mut().set_count(8)).unwrap();
}

/// Uses an opened (possibly damaged) pool through the safe API: every outcome is fine except a
/// panic or a crash.
fn exercise(pool: &Pool<Root>) -> Result<(), Error> {
    pool.read(|r| {
        let _ = r.root().count;
        let mut p = r.root().head;
        for _ in 0..100 {
            if p.is_null() {
                break;
            }
            match r.get(p) {
                Ok(n) => p = n.next,
                Err(_) => break,
            }
        }
        let _ = r.objects::<Node>().take(100).count();
        let _ = r.objects::<Big>().take(10).count();
    })
    .unwrap();
    let _ = pool.info();
    let _ = pool.stats();
    pool.transaction(|tx| {
        let n = tx.root().count;
        tx.root_mut().set_count(n.wrapping_add(1))?;
        let head = tx.root().head;
        let node = tx.alloc(Node {
            value: 99,
            next: head,
        })?;
        tx.root_mut().set_head(node)?;
        if let Ok(old) = tx.get(head) {
            let next = old.next;
            let _ = tx.free(next);
        }
        Ok(())
    })
}

#[test]
fn fuzzed_pool_files_never_crash_the_opener() {
    let dir = tempdir();
    let path = dir.path().join("fuzz.pool");
    make_fuzz_pool(&path);
    let pristine = fs::read(&path).unwrap();
    let h = &pristine[..HEADER as usize];
    let log = u64_at(h, LOG_OFFSET) as usize;
    let root = u64_at(h, ROOT_OFFSET) as usize;
    let table = u64_at(h, CHUNK_TABLE_OFFSET) as usize;
    let heap = u64_at(h, HEAP_OFFSET) as usize;
    let chunks = u64_at(h, CHUNK_COUNT) as usize;
    let len = pristine.len();
    // Byte damage: (name, start, end) of the range whose bytes are changed at random.
    let regions: [(&str, usize, usize); 9] = [
        ("header A", 0, HEADER as usize),
        ("header B", HEADER as usize, 2 * HEADER as usize),
        ("both headers, resealed", 0, CHECKSUM),
        ("log", log, root),
        ("root", root, root + 16),
        ("chunk table", table, table + chunks * 16),
        ("chunk table, plausible entries", table, table + chunks * 16),
        ("root pointer", root + 8, root + 16),
        ("heap", heap, len),
    ];
    let fingerprints: Vec<u64> = (0..chunks)
        .map(|i| u64_at(&pristine, table + 16 * i + 8))
        .filter(|&f| f != 0)
        .collect();

    let mut rng = Rng(0xf0ca_cc1a);
    let mut tally = std::collections::BTreeMap::<String, u32>::new();
    for iteration in 0..450 {
        let (name, start, end) = regions[iteration % regions.len()];
        let mut image = pristine.clone();
        let mut touched = Vec::new();
        match name {
            "chunk table, plausible entries" => {
                // Entries that decode to real kinds, classes and counts, with real fingerprints.
                for _ in 0..1 + rng.below(3) {
                    let i = rng.below(chunks as u64) as usize;
                    let word =
                        rng.below(5) | rng.below(20) << 8 | rng.below(chunks as u64 + 3) << 32;
                    let fp = if fingerprints.is_empty() || rng.below(4) == 0 {
                        rng.next_u64()
                    } else {
                        fingerprints[rng.below(fingerprints.len() as u64) as usize]
                    };
                    let at = table + 16 * i;
                    image[at..at + 8].copy_from_slice(&word.to_le_bytes());
                    image[at + 8..at + 16].copy_from_slice(&fp.to_le_bytes());
                    touched.push(at);
                }
            }
            "root pointer" => {
                // Anywhere in (or just past) the pool, sometimes aligned like an object.
                let mut target = rng.below(len as u64 + 64);
                if rng.below(2) == 0 {
                    target &= !15;
                }
                image[start..end].copy_from_slice(&target.to_le_bytes());
                touched.push(target as usize);
            }
            _ => {
                // Mostly damage bytes that hold something: zeroed space is the least interesting.
                let live: Vec<usize> = (start..end).filter(|&i| image[i] != 0).collect();
                for _ in 0..1 + rng.below(8) {
                    let at = if !live.is_empty() && rng.below(4) != 0 {
                        live[rng.below(live.len() as u64) as usize]
                    } else {
                        start + rng.below((end - start) as u64) as usize
                    };
                    image[at] ^= 1 + rng.below(255) as u8;
                    touched.push(at);
                }
            }
        }
        if name == "both headers, resealed" {
            let (a, b) = image.split_at_mut(HEADER as usize);
            seal(a);
            b[..HEADER as usize].copy_from_slice(a);
        }
        fs::write(&path, &image).unwrap();

        let context = format!("iteration {iteration}, {name}, at {touched:?}");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            match Pool::<Root>::open(&path) {
                Ok(pool) => {
                    let tx = exercise(&pool);
                    drop(pool);
                    // What the library opened and then wrote itself, it opens again.
                    let again = Pool::<Root>::open(&path).map_err(|e| {
                        format!("reopen after a successful open and transaction ({tx:?}): {e}")
                    });
                    if let Ok(pool) = &again {
                        let _ = exercise(pool);
                    }
                    again.map(|_| "ok".to_string())
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains(&format!("pool file {}", path.display())),
                        "message does not name the file: {msg}"
                    );
                    Ok(format!("err: {}", msg_kind(&e)))
                }
            }
        }));
        match outcome {
            Ok(Ok(kind)) => *tally.entry(format!("{name}: {kind}")).or_default() += 1,
            Ok(Err(problem)) => panic!("{context}: {problem}"),
            Err(panic) => {
                eprintln!("{context}: panicked");
                std::panic::resume_unwind(panic)
            }
        }
    }
    for (k, n) in &tally {
        println!("{n:4}  {k}");
    }
    assert!(tally.keys().any(|k| k.contains("ok")));
    assert!(tally.keys().any(|k| k.contains("err")));
}

fn msg_kind(e: &Error) -> &'static str {
    match e {
        Error::NotFound { .. } => "NotFound",
        Error::TooSmall { .. } => "TooSmall",
        Error::Truncated { .. } => "Truncated",
        Error::BadMagic { .. } => "BadMagic",
        Error::HeaderCorrupt { .. } => "HeaderCorrupt",
        Error::UnsupportedVersion { .. } => "UnsupportedVersion",
        Error::LayoutNameMismatch { .. } => "LayoutNameMismatch",
        Error::RootTypeMismatch { .. } => "RootTypeMismatch",
        Error::PoolInUse { .. } => "PoolInUse",
        Error::Corrupt { .. } => "Corrupt",
        Error::InvalidArgument { .. } => "InvalidArgument",
        Error::FileTooShort { .. } => "FileTooShort",
        Error::Io { .. } => "Io",
        _ => "other",
    }
}

/// A create whose process died leaves its hidden temporary file, with the pool's space reserved.
/// The next create of the same name removes it, but never the file of a create still running,
/// nor one of another name.
#[test]
fn create_removes_what_a_dead_create_left() {
    use std::os::fd::AsRawFd;
    let dir = spawning_tempdir();
    let path = dir.path().join("p.pool");
    // The id of a process that has exited (free until the kernel reuses it).
    let mut gone = Command::new("true").spawn().unwrap();
    let dead = gone.id();
    gone.wait().unwrap();
    let stale = dir.path().join(format!(".p.pool.creating.{dead}.0"));
    fs::write(&stale, vec![0u8; 64 << 10]).unwrap();
    // A create in progress: a live process, and the temporary file locked.
    let running = dir
        .path()
        .join(format!(".p.pool.creating.{}.999", std::process::id()));
    let running_file = fs::File::create(&running).unwrap();
    // SAFETY: flock on an open descriptor.
    let locked = unsafe { libc::flock(running_file.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(locked, 0);
    let other = dir.path().join(format!(".q.pool.creating.{dead}.0"));
    fs::write(&other, b"another pool's").unwrap();

    make_pool(&path);
    assert!(!stale.exists(), "the dead create's file is still there");
    assert!(running.exists(), "a running create's file was removed");
    assert!(other.exists(), "another name's file was removed");
    assert_intact(&path);
}

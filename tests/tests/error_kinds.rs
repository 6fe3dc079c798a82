//! Every detail kind the error docs name is produced where it says, and a program can match it:
//! each pointer check ([`PointerRejection`]), each refused argument ([`InvalidArgument`]), the
//! structures open refuses ([`Corruption`]), and the deep check's typed problems.
//! (`InvalidArgument::RootAlignment` needs a root type aligned past `MAX_ALIGN`, which the derive
//! refuses at compile time: `tests/ui`.)
//!
//! The top-level file, header and type kinds are matched in `pool_errors.rs`, `type_evolution.rs`
//! and `full_pool.rs`; the chunk table kinds in `hostile_heap.rs`; the type table and log
//! extension kinds in `pmem-core`'s inspect tests.

use std::path::Path;

use pmem_core::check::{PointerProblem, Problem};
use pmem_core::crash::{CrashTest, ImageKind};
use pmem_core::error::{ChunkProblem, Corruption, InvalidArgument, PointerRejection};
use pmem_core::inspect::Inspection;
use pmem_core::{Error, FlushMode, PPtr, PSlice, Persistent, Pool, PoolImage};
use pmem_tests::hostile::format::{put, seal_header, u64_at, Geometry, CHUNK_SIZE, HEADER_SIZE};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    node: PPtr<Node>,
    big: PPtr<Big>,
}

#[derive(Persistent, Clone, Copy)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

/// 48 bytes: its class has 341 slots in a one-chunk run, leaving 16 bytes past the last.
#[derive(Persistent, Clone, Copy)]
#[repr(C)]
struct Six {
    words: [u64; 6],
}

/// Larger than any run's objects: a large object of whole chunks.
#[derive(Persistent)]
#[repr(C)]
struct Big {
    words: [u64; 8192],
}

const SIZE: u64 = 4 << 20;

fn node() -> Node {
    Node {
        value: 7,
        next: PPtr::null(),
    }
}

fn rejection<T>(result: pmem_core::Result<T>) -> PointerRejection {
    match result {
        Err(Error::InvalidPointer { reason, .. }) => reason,
        Err(e) => panic!("expected InvalidPointer, got {e:?}"),
        Ok(_) => panic!("expected InvalidPointer, got a value"),
    }
}

fn argument<T: std::fmt::Debug>(result: pmem_core::Result<T>) -> InvalidArgument {
    match result {
        Err(Error::InvalidArgument { argument, .. }) => argument,
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn each_pointer_check_has_its_own_kind() {
    let pool = Pool::<Root>::builder().create_simulated(SIZE).unwrap();
    let live = pool.alloc(node()).unwrap();
    let freed = pool.alloc(node()).unwrap();
    pool.free(freed).unwrap();
    let six = pool.alloc(Six { words: [0; 6] }).unwrap();
    let slice = pool
        .transaction(|tx| tx.alloc_slice_zeroed::<Six>(1))
        .unwrap();
    let big = pool.alloc(Big { words: [0; 8192] }).unwrap();
    let gone_big = pool.alloc(Big { words: [0; 8192] }).unwrap();
    pool.free(gone_big).unwrap();
    // The run of `Six` starts a whole number of chunks from the large object's first byte.
    let chunk_base = big.offset() % CHUNK_SIZE;
    let run = six.offset() - (six.offset() - chunk_base) % CHUNK_SIZE;

    let r = pool.reader().unwrap();
    assert_eq!(
        rejection(r.get(PPtr::<Node>::null())),
        PointerRejection::Null
    );
    assert!(matches!(
        rejection(r.get(PPtr::<Node>::from_offset(live.offset() + 4))),
        PointerRejection::Misaligned { align: 8, type_name } if type_name.ends_with("Node")
    ));
    assert_eq!(
        rejection(r.get(PPtr::<Node>::from_offset(8))),
        PointerRejection::OutsideHeap
    );
    assert_eq!(
        rejection(r.get(gone_big)),
        PointerRejection::InFreeSpace,
        "a freed large object's chunks are free heap space"
    );
    assert_eq!(
        rejection(r.get(PPtr::<Node>::from_offset(big.offset() + 64))),
        PointerRejection::InsideLargeObject
    );
    assert_eq!(
        rejection(r.get(PPtr::<u64>::from_offset(live.offset() + 8))),
        PointerRejection::InsideObject
    );
    assert_eq!(
        rejection(r.get(PPtr::<Six>::from_offset(run + 341 * 48))),
        PointerRejection::PastLastSlot
    );
    assert_eq!(rejection(r.get(freed)), PointerRejection::NotAllocated);
    match rejection(r.get(live.cast::<Six>())) {
        PointerRejection::WrongType {
            type_name,
            expected,
            found,
        } => {
            assert!(type_name.ends_with("Six"), "{type_name}");
            assert_eq!(expected, <Six as Persistent>::FINGERPRINT);
            assert_eq!(found, <Node as Persistent>::FINGERPRINT);
        }
        other => panic!("expected WrongType, got {other:?}"),
    }
    assert_eq!(
        rejection(r.get_slice(PSlice::<Six>::from_raw_parts(slice.offset(), 2))),
        PointerRejection::TooSmall {
            size: 48,
            needed: 96
        }
    );
    assert_eq!(
        rejection(r.get_slice(PSlice::<Six>::from_raw_parts(slice.offset(), u64::MAX))),
        PointerRejection::LengthOverflow { len: u64::MAX }
    );
    drop(r);

    let twice = pool.transaction(|tx| {
        tx.free(live)?;
        tx.free(live)
    });
    assert_eq!(rejection(twice), PointerRejection::DoubleFree);
    let duplicate = pool.transaction(|tx| tx.get_mut_many([live, live]).map(|_| ()));
    assert_eq!(rejection(duplicate), PointerRejection::Duplicate);

    // The message is the reason, after the pointer.
    let e = pool.reader().unwrap().get(freed).map(|_| ()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "invalid persistent pointer {:#x}: no object is allocated there (freed?)",
            freed.offset()
        )
    );
}

#[test]
fn each_refused_argument_has_its_own_kind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("args.pool");

    assert_eq!(
        argument(
            Pool::<Root>::builder()
                .flush_mode(FlushMode::Simulated)
                .create(&path, SIZE)
        ),
        InvalidArgument::SimulatedModeForFile
    );
    // A mode the CPU lacks is refused by kind; which modes this CPU has varies.
    for mode in [FlushMode::Clwb, FlushMode::ClflushOpt, FlushMode::Clflush] {
        let other = dir.path().join(format!("{mode}.pool"));
        match Pool::<Root>::builder()
            .flush_mode(mode)
            .create(&other, SIZE)
        {
            Ok(_) => {}
            Err(Error::InvalidArgument {
                argument: InvalidArgument::UnsupportedFlushMode { mode: m },
                ..
            }) => assert_eq!(m, mode),
            Err(e) => panic!("{mode}: {e:?}"),
        }
    }
    assert_eq!(
        argument(Pool::<Root>::builder().layout("a\0b").create(&path, SIZE)),
        InvalidArgument::LayoutName {
            name: "a\0b".into(),
            max: 63
        }
    );
    assert_eq!(
        argument(Pool::<Root>::builder().create_simulated(1 << 62)),
        InvalidArgument::ImageTooLarge { size: 1 << 62 }
    );
    assert!(!path.exists(), "no refused create leaves a file");

    let pool = Pool::<Root>::builder().create_simulated(SIZE).unwrap();
    let huge = pool.transaction(|tx| tx.alloc_slice_zeroed::<Six>(u64::MAX / 8).map(|_| ()));
    assert_eq!(
        argument(huge),
        InvalidArgument::SliceTooLarge {
            len: u64::MAX / 8,
            element_size: 48
        }
    );

    let fence = CrashTest::new(SIZE).image_at::<Root>(|_| Ok(()), 1 << 40, ImageKind::Everything);
    assert_eq!(
        argument(fence),
        InvalidArgument::NoSuchFence { fence: 1 << 40 }
    );

    drop(Pool::<Root>::create(&path, SIZE).unwrap());
    let inspection = Inspection::open(&path).unwrap();
    let e = inspection.bytes(SIZE - 8, 16).unwrap_err();
    match &e {
        Error::InvalidArgument {
            argument:
                InvalidArgument::OutsidePool {
                    offset,
                    len,
                    pool_size,
                },
            ..
        } => assert_eq!((*offset, *len, *pool_size), (SIZE - 8, 16, SIZE)),
        other => panic!("expected OutsidePool, got {other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("pool file {}", path.display())) && msg.contains("outside the pool"),
        "{msg}"
    );
}

/// A pool file with a root pointing at a node, as bytes.
fn pool_bytes(path: &Path) -> Vec<u8> {
    let pool = Pool::<Root>::create(path, SIZE).unwrap();
    pool.alloc_into(node(), |tx, p| tx.root_mut().set_node(p))
        .unwrap();
    drop(pool);
    std::fs::read(path).unwrap()
}

fn corruption(bytes: &[u8]) -> Corruption {
    match Pool::<Root>::builder().open_image(PoolImage::from_bytes(bytes)) {
        Err(Error::Corrupt { problem, .. }) => problem,
        Err(e) => panic!("expected Corrupt, got {e:?}"),
        Ok(_) => panic!("expected Corrupt, the pool opened"),
    }
}

#[test]
fn open_names_the_corrupt_structure() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = pool_bytes(&dir.path().join("corrupt.pool"));
    let g = Geometry::read(&bytes);

    // A header whose geometry this library would not make (checksum valid).
    let mut moved = bytes.clone();
    for copy in 0..2 {
        let at = (copy * HEADER_SIZE) as u64 + 128;
        put(&mut moved, at, 8, g.chunk_table_offset + 64);
        seal_header(&mut moved, copy);
    }
    assert_eq!(corruption(&moved), Corruption::Geometry);

    // A free chunk's entry with a count.
    let last = g.chunk_count - 1;
    let mut table = bytes.clone();
    put(&mut table, g.chunk_entry(last), 8, 5 << 32);
    match corruption(&table) {
        Corruption::ChunkTable {
            chunk,
            entry,
            problem: ChunkProblem::FreeWithFields { word },
        } => assert_eq!((chunk, entry, word), (last, g.chunk_entry(last), 5 << 32)),
        other => panic!("expected a chunk table problem, got {other:?}"),
    }
    let e = Pool::<Root>::builder()
        .open_image(PoolImage::from_bytes(&table))
        .map(|_| ())
        .unwrap_err();
    assert!(
        e.to_string().contains(&format!(
            "corrupt: heap metadata: chunk {last} (table entry at"
        )),
        "{e}"
    );
}

#[test]
fn the_deep_check_reports_typed_problems() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = pool_bytes(&dir.path().join("check.pool"));
    let g = Geometry::read(&bytes);

    // Header copy B fails its checksum: opening repairs it; the check reports it.
    let mut header = bytes.clone();
    header[HEADER_SIZE + 300] ^= 1;
    let report = pmem_core::check::check_image(PoolImage::from_bytes(&header)).unwrap();
    assert_eq!(
        report.problems,
        [Problem::HeaderCopy {
            copy: 1,
            offset: HEADER_SIZE as u64
        }]
    );
    assert!(
        report.to_string().contains(
            "problem: header copy B (offset 4096) fails its checksum; opening the pool repairs it from the other copy"
        ),
        "{report}"
    );

    // The root's pointer moved into free heap space: dangling.
    let node_at = u64_at(&bytes, g.root_offset);
    let free = g.chunk(g.chunk_count - 1);
    let mut dangling = bytes.clone();
    put(&mut dangling, g.root_offset, 8, free);
    let report = pmem_core::check::check_image(PoolImage::from_bytes(&dangling)).unwrap();
    match report.problems.as_slice() {
        [Problem::Pointer {
            at,
            owner,
            owner_type: None,
            target,
            problem: PointerProblem::Dangling(PointerRejection::InFreeSpace),
        }] => assert_eq!((*at, *owner, *target), (g.root_offset, g.root_offset, free)),
        other => panic!("expected one dangling pointer, got {other:?}"),
    }
    assert!(
        report.to_string().contains(&format!(
            "problem: the pointer at {:#x} (+0x0 in the root) is dangling: {free:#x} points into free heap space",
            g.root_offset
        )),
        "{report}"
    );

    // The root points at the node's second word: inside an object.
    let mut inside = bytes.clone();
    put(&mut inside, g.root_offset, 8, node_at + 8);
    let report = pmem_core::check::check_image(PoolImage::from_bytes(&inside)).unwrap();
    assert!(
        matches!(
            report.problems.as_slice(),
            [Problem::Pointer {
                problem: PointerProblem::Dangling(PointerRejection::InsideObject),
                ..
            }]
        ),
        "{report}"
    );

    // A damaged chunk table is what open refuses, reported as the check's problem.
    let mut table = bytes.clone();
    put(&mut table, g.chunk_entry(g.chunk_count - 1), 8, 5 << 32);
    let report = Inspection::from_image(PoolImage::from_bytes(&bytes))
        .unwrap()
        .check();
    assert!(report.is_healthy(), "{report}");
    let err = pmem_core::check::check_image(PoolImage::from_bytes(&table)).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Corrupt {
                problem: Corruption::ChunkTable {
                    problem: ChunkProblem::FreeWithFields { .. },
                    ..
                },
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn the_error_is_small_thread_safe_and_has_sources() {
    fn thread_safe<E: std::error::Error + Send + Sync + 'static>() {}
    thread_safe::<Error>();
    // `Result<T>` is returned on the hot paths: the detail enums must not grow it.
    assert!(
        std::mem::size_of::<Error>() <= 96,
        "{}",
        std::mem::size_of::<Error>()
    );
    let dir = tempfile::tempdir().unwrap();
    let e = Pool::<Root>::open(dir.path()).map(|_| ()).unwrap_err();
    match &e {
        Error::Io { source, .. } => {
            let inner = std::error::Error::source(&e).expect("an I/O error has a source");
            assert_eq!(inner.to_string(), source.to_string());
        }
        other => panic!("opening a directory: expected Io, got {other:?}"),
    }
    let corrupt = Error::InvalidPointer {
        offset: 8,
        reason: PointerRejection::Null,
    };
    assert!(std::error::Error::source(&corrupt).is_none());
}

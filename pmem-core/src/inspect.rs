//! Looking into a pool without its Rust types: for `pmem info`, `pmem dump` and scripts.
//!
//! An [`Inspection`] maps a pool file copy-on-write and recovers that private copy, so the file
//! itself is never modified and memory is spent only on the pages recovery writes, and describes
//! it with the type table every typed pool carries.
//!
//! ```
//! # use pmem_core::{Persistent, Pool};
//! # #[derive(Persistent)] #[repr(C)] struct Root { count: u64 }
//! # let dir = tempfile::tempdir().unwrap();
//! # let path = dir.path().join("p.pool");
//! # drop(Pool::<Root>::create(&path, 2 << 20)?);
//! use pmem_core::inspect::Inspection;
//! let inspection = Inspection::open(&path)?;
//! assert_eq!(inspection.info().root_type, "Root");
//! assert!(inspection.check().is_healthy());
//! # Ok::<(), pmem_core::Error>(())
//! ```

use std::path::Path;

use crate::check::{check_examined, CheckReport, Examined};
use crate::error::{Error, InvalidArgument, Location, PointerRejection, Result};
use crate::heap::{Extent, HeapMeta, HeapStats, ObjectRef};
pub use crate::layout::types::{Slot, SlotTarget, TypeGraph, TypeNode};
use crate::persist::PoolImage;
use crate::pool::{Pool, PoolInfo};

/// A pool examined without its Rust types.
#[derive(Debug)]
pub struct Inspection {
    examined: Examined,
}

/// One live object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Pool offset of its first byte.
    pub offset: u64,
    /// Usable size in bytes.
    pub size: u64,
    /// Type fingerprint recorded for it.
    pub fingerprint: u64,
    /// Type name from the type table (`[T]` for a slice of `T`), or the fingerprint in hex.
    pub type_name: String,
}

impl Inspection {
    /// Maps and examines a pool file, holding a shared lock on it until dropped. Fails with
    /// [`Error::PoolInUse`] if a program has it open; while the inspection lives, programs
    /// cannot open it.
    pub fn open(path: impl AsRef<Path>) -> Result<Inspection> {
        let examined = Examined::open(path.as_ref())?;
        Ok(Inspection { examined })
    }

    /// Examines a pool image.
    pub fn from_image(image: PoolImage) -> Result<Inspection> {
        let examined = Examined::from_image(image, Location::Memory)?;
        Ok(Inspection { examined })
    }

    /// Header facts as in the file, and what recovery did to the in-memory copy.
    pub fn info(&self) -> &PoolInfo {
        &self.examined.info
    }

    /// Heap usage.
    pub fn stats(&self) -> HeapStats {
        self.examined.pool.stats().heap
    }

    /// The types reachable from the root, if the pool records them.
    pub fn type_graph(&self) -> Option<&TypeGraph> {
        self.examined.types.as_ref().ok()
    }

    fn meta(&self) -> &HeapMeta {
        self.examined.meta()
    }

    /// The name of the type with this fingerprint (`[T]` for slices of `T`).
    pub fn type_name(&self, fingerprint: u64) -> String {
        match self.type_graph() {
            Some(graph) => graph.name_of(fingerprint),
            None => TypeGraph::default().name_of(fingerprint),
        }
    }

    /// Every live object, in address order.
    pub fn objects(&self) -> Vec<ObjectInfo> {
        let meta = self.meta();
        let mut out = Vec::new();
        // The heap was validated when the copy was opened, so the walk does not fail.
        let _ = meta.walk(|extent| {
            let fingerprint = match extent {
                Extent::Free { .. } => return,
                Extent::Span { fingerprint, .. } | Extent::Run { fingerprint, .. } => fingerprint,
            };
            let type_name = self.type_name(fingerprint);
            meta.for_each_object_in(extent, |offset, size| {
                out.push(ObjectInfo {
                    offset,
                    size,
                    fingerprint,
                    type_name: type_name.clone(),
                })
            });
        });
        out
    }

    /// The object that starts at `offset`.
    pub fn object_at(&self, offset: u64) -> Result<ObjectInfo> {
        let meta = self.meta();
        let object = meta
            .object_at(offset)
            .map_err(|reason| Error::InvalidPointer { offset, reason })?;
        if !meta.is_allocated(&object) {
            return Err(Error::InvalidPointer {
                offset,
                reason: PointerRejection::NotAllocated,
            });
        }
        let fingerprint = object.fingerprint();
        let size = match object {
            ObjectRef::Slot { size, .. } | ObjectRef::Span { size, .. } => size,
        };
        Ok(ObjectInfo {
            offset,
            size,
            fingerprint,
            type_name: self.type_name(fingerprint),
        })
    }

    /// `len` bytes of the pool at `offset`.
    pub fn bytes(&self, offset: u64, len: u64) -> Result<&[u8]> {
        let region = &self.examined.pool.shared().media.region;
        if offset
            .checked_add(len)
            .is_none_or(|end| end > self.info().pool_size)
        {
            return Err(Error::invalid_argument(
                self.examined.pool.location(),
                InvalidArgument::OutsidePool {
                    offset,
                    len,
                    pool_size: self.info().pool_size,
                },
            ));
        }
        // SAFETY: in bounds (checked); the copy is private and nothing writes it while `&self`
        // lives.
        Ok(unsafe { region.slice(offset, len) })
    }

    /// The root object's bytes.
    pub fn root(&self) -> &[u8] {
        let g = &self.examined.pool.shared().media.geometry;
        self.bytes(g.root_offset, g.root_size)
            .expect("the root is inside the pool")
    }

    /// The deep check: headers and logs as they were on the media, heap metadata, and every
    /// pointer reachable from the root.
    pub fn check(&self) -> CheckReport {
        check_examined(&self.examined)
    }
}

/// Creates a pool file without a root type: its root has `root_bytes` of zeroed room, and the
/// first program that opens it claims it for its root type (which must fit the same number of
/// 4 KiB pages). With `reserve_all`, the whole file's disk space is reserved now rather than as
/// the pool uses it ([`PoolBuilder::reserve_all`](crate::PoolBuilder::reserve_all)). For
/// `pmem create`.
pub fn create_file(
    path: impl AsRef<Path>,
    size: u64,
    layout: Option<&str>,
    root_bytes: u64,
    reserve_all: bool,
) -> Result<PoolInfo> {
    let mut builder = Pool::<()>::builder()
        .untyped()
        .root_area(root_bytes)
        .reserve_all(reserve_all);
    if let Some(name) = layout {
        builder = builder.layout(name);
    }
    let pool = builder.create(path, size)?;
    Ok(pool.info().clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::Problem;
    use crate::error::{Corruption, TypeTableProblem};
    use crate::layout::geometry::{TYPE_TABLE_OFFSET, TYPE_TABLE_SIZE};
    use crate::layout::types::TypeGraph;
    use crate::{PPtr, Persistent};

    #[derive(Persistent)]
    #[repr(C)]
    struct Root {
        next: PPtr<Root>,
        pad: u64,
    }

    /// A pool with a root pointing at a second object, and its decoded type table.
    fn pool_and_graph() -> (PoolImage, TypeGraph) {
        let pool = Pool::<Root>::builder().create_simulated(2 << 20).unwrap();
        pool.alloc_into(
            Root {
                next: PPtr::null(),
                pad: 0,
            },
            |tx, p| tx.root_mut().set_next(p),
        )
        .unwrap();
        let sim = pool.shared().media.domain.sim().unwrap();
        let image = sim.crash_now(|point| point.everything());
        drop(pool);
        let graph = TypeGraph::decode(
            &image.as_bytes()[TYPE_TABLE_OFFSET as usize..][..TYPE_TABLE_SIZE as usize],
        )
        .expect("a typed pool has a type table");
        (image, graph)
    }

    /// `image` with `graph` as its type table (checksummed: a crafted file).
    fn with_table(image: &PoolImage, graph: &TypeGraph) -> PoolImage {
        let mut hostile = image.clone();
        let table = graph.encode();
        hostile.as_bytes_mut()[TYPE_TABLE_OFFSET as usize..][..table.len()].copy_from_slice(&table);
        hostile
    }

    /// A type table with a valid checksum but slots outside their type (a crafted file) is
    /// reported, and the walk reads nothing outside the pool.
    #[test]
    fn a_hostile_type_table_is_refused() {
        let (image, graph) = pool_and_graph();
        for (offset, count, stride) in [(1 << 40, 1, 8), (8, u64::MAX, 8), (0, 3, 8), (16, 1, 8)] {
            let mut graph = graph.clone();
            let slot = graph.types[0]
                .slots
                .iter_mut()
                .find(|s| matches!(s.kind, SlotTarget::Inline(_)))
                .unwrap();
            *slot = Slot {
                offset,
                count,
                stride,
                kind: slot.kind,
            };
            let report = Inspection::from_image(with_table(&image, &graph))
                .unwrap()
                .check();
            assert!(
                report.problems.iter().any(|p| matches!(
                    p,
                    Problem::Corrupt(Corruption::TypeTable(TypeTableProblem::SlotOutside { .. }))
                )),
                "{report}"
            );
        }
    }

    /// A type that contains itself inline would make the walk endless: the table is refused.
    #[test]
    fn a_type_table_with_an_inline_cycle_is_refused() {
        let (image, mut graph) = pool_and_graph();
        let pointer = graph.types[0]
            .slots
            .iter()
            .find_map(|s| match s.kind {
                SlotTarget::Inline(i) => Some(i),
                _ => None,
            })
            .unwrap();
        graph.types[pointer as usize].slots = vec![Slot {
            offset: 0,
            count: 1,
            stride: 8,
            kind: SlotTarget::Inline(pointer),
        }];
        let report = Inspection::from_image(with_table(&image, &graph))
            .unwrap()
            .check();
        assert!(
            report.problems.iter().any(|p| matches!(
                p,
                Problem::Corrupt(Corruption::TypeTable(TypeTableProblem::InlineCycle { .. }))
            )),
            "{report}"
        );
    }

    /// A chain of inline types, each holding the next twice at the same offset, is acyclic and
    /// every slot fits, but walking it visits 2^depth values: the table is refused, quickly.
    #[test]
    fn a_type_table_whose_walk_would_be_exponential_is_refused() {
        let (image, mut graph) = pool_and_graph();
        const DEPTH: u32 = 40;
        let first = graph.types.len() as u32;
        for level in 0..DEPTH {
            let next = first + level + 1;
            let slots = if level + 1 == DEPTH {
                vec![Slot {
                    offset: 0,
                    count: 1,
                    stride: 8,
                    kind: SlotTarget::Ptr(0),
                }]
            } else {
                vec![
                    Slot {
                        offset: 0,
                        count: 1,
                        stride: 8,
                        kind: SlotTarget::Inline(next),
                    };
                    2
                ]
            };
            graph.types.push(TypeNode {
                name: format!("Level{level}"),
                fingerprint: 1000 + level as u64,
                size: 8,
                align: 8,
                fields: None,
                slots,
            });
        }
        graph.types[0].slots.push(Slot {
            offset: 0,
            count: 1,
            stride: 8,
            kind: SlotTarget::Inline(first),
        });
        let hostile = with_table(&image, &graph);
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(Inspection::from_image(hostile).unwrap().check());
        });
        let report = finished
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the deep check of a crafted type table did not finish");
        assert!(
            report.problems.iter().any(|p| matches!(
                p,
                Problem::Corrupt(Corruption::TypeTable(TypeTableProblem::OverlappingSlots {
                    type_name,
                    ..
                })) if type_name.starts_with("Level")
            )),
            "{report}"
        );
    }

    /// Opening with the program's types refuses a type table with a valid checksum that is not
    /// well formed (a crafted file), naming the problem; one that fails its checksum (a torn
    /// rewrite) is only a record, and is rewritten.
    #[test]
    fn a_typed_open_refuses_a_malformed_type_table() {
        let (image, graph) = pool_and_graph();
        let mut overlapping = graph.clone();
        let root_slot = overlapping.types[0].slots[0];
        overlapping.types[0].slots.push(Slot {
            offset: 1 << 40,
            ..root_slot
        });
        let mut foreign_root = graph.clone();
        foreign_root.types[0].fingerprint ^= 1;
        let refused = |hostile: &TypeGraph| match Pool::<Root>::builder()
            .open_image(with_table(&image, hostile))
        {
            Err(Error::Corrupt {
                problem: Corruption::TypeTable(problem),
                ..
            }) => problem,
            other => panic!("expected a corrupt type table, got {other:?}"),
        };
        assert!(
            matches!(
                refused(&overlapping),
                TypeTableProblem::SlotOutside { offset, .. } if offset == 1 << 40
            ),
            "a slot outside its type"
        );
        assert_eq!(refused(&foreign_root), TypeTableProblem::RootNotFirst);

        let mut torn = image.clone();
        let at = TYPE_TABLE_OFFSET as usize + 100;
        torn.as_bytes_mut()[at] ^= 0xff;
        let pool = Pool::<Root>::builder().open_image(torn).unwrap();
        let sim = pool.shared().media.domain.sim().unwrap();
        let reopened = sim.crash_now(|point| point.everything());
        drop(pool);
        let table = &reopened.as_bytes()[TYPE_TABLE_OFFSET as usize..][..TYPE_TABLE_SIZE as usize];
        assert_eq!(TypeGraph::decode(table), Some(graph));
    }

    /// A table written before fields were recorded still guards the types behind the root: a
    /// type whose fingerprint differs from the recorded one is refused.
    #[test]
    fn a_table_without_fields_is_still_compared() {
        let (image, mut graph) = pool_and_graph();
        for t in &mut graph.types {
            t.fields = None;
        }
        let target = graph.types[0]
            .slots
            .iter()
            .find_map(|s| match s.kind {
                SlotTarget::Inline(i) => Some(i as usize),
                _ => None,
            })
            .unwrap();
        assert!(Pool::<Root>::builder()
            .open_image(with_table(&image, &graph))
            .is_ok());
        graph.types[target].fingerprint ^= 1;
        match Pool::<Root>::builder().open_image(with_table(&image, &graph)) {
            Err(Error::TypeMismatch { type_name, .. }) => assert_eq!(type_name, "PPtr<Root>"),
            other => panic!("expected a type mismatch, got {other:?}"),
        }
    }

    /// Writes a checksummed log entry of `kind` and generation `gen` at `at`.
    fn write_entry(image: &mut PoolImage, at: u64, k: u32, gen: u64, payload: &[u8]) {
        use crate::layout::log::{entry_checksum, flags, kind_word};
        let key = crate::layout::header::Header::copies(image.as_bytes()).unwrap()[0]
            .log_key()
            .generation(gen);
        let word = kind_word(k, flags::FENCED, 0);
        let bytes = image.as_bytes_mut();
        let at = at as usize;
        bytes[at..at + 8]
            .copy_from_slice(&(word as u64 | (payload.len() as u64) << 32).to_le_bytes());
        bytes[at + 8..at + 16].copy_from_slice(&gen.to_le_bytes());
        let sum = entry_checksum(&key, at as u64, word, payload.len() as u32, payload);
        bytes[at + 16..at + 24].copy_from_slice(&sum.to_le_bytes());
        bytes[at + 24..at + 24 + payload.len()].copy_from_slice(payload);
    }

    /// Header and log fields at the edge of their range (the checksums are valid: a crafted
    /// file) open without arithmetic overflow: the last run id, the last log generation, and a
    /// log extension past the end of the heap.
    #[test]
    fn extreme_header_and_log_values_do_not_overflow() {
        use crate::layout::geometry::{Geometry, HEADER_SIZE};
        use crate::layout::header::Header;
        use crate::layout::log::kind;
        use zerocopy::{FromBytes, IntoBytes};
        let (image, _) = pool_and_graph();

        let mut last_run = image.clone();
        for copy in 0..2 {
            let at = (copy * HEADER_SIZE) as usize;
            let bytes = &mut last_run.as_bytes_mut()[at..at + HEADER_SIZE as usize];
            let mut h = Header::read_from_bytes(bytes).unwrap();
            h.run_id = zerocopy::little_endian::U64::new(u64::MAX);
            h.seal();
            bytes.copy_from_slice(h.as_bytes());
        }
        assert!(Inspection::from_image(last_run)
            .unwrap()
            .check()
            .is_healthy());

        let mut last_gen = image.clone();
        write_entry(
            &mut last_gen,
            Geometry::log_slot_offset(0),
            kind::RETIRED,
            u64::MAX,
            &[],
        );
        assert!(Inspection::from_image(last_gen)
            .unwrap()
            .check()
            .is_healthy());

        let mut far_extension = image.clone();
        let mut payload = [0u8; 16];
        payload[..8].copy_from_slice(&(image.len() as u64 + (1 << 20)).to_le_bytes());
        payload[8..].copy_from_slice(&4096u64.to_le_bytes());
        write_entry(
            &mut far_extension,
            Geometry::log_slot_offset(0),
            kind::EXTEND,
            1 << 40,
            &payload,
        );
        let _ = Inspection::from_image(far_extension).map(|i| i.check());
    }

    /// A crafted log (valid checksums: whoever wrote the file had its key) whose extension chain
    /// leaves the heap, splits chunks, is empty or loops back on itself is refused, naming the
    /// entry.
    #[test]
    fn log_extension_chains_are_validated() {
        use crate::layout::geometry::Geometry;
        use crate::layout::header::Header;
        use crate::layout::heap::CHUNK_SIZE;
        use crate::layout::log::kind;
        let (image, _) = pool_and_graph();
        let g = Header::copies(image.as_bytes()).unwrap()[0].geometry();
        let slot = Geometry::log_slot_offset(0);
        let gen = 1 << 40;
        let extend = |image: &mut PoolImage, at: u64, offset: u64, len: u64| {
            let mut payload = [0u8; 16];
            payload[..8].copy_from_slice(&offset.to_le_bytes());
            payload[8..].copy_from_slice(&len.to_le_bytes());
            write_entry(image, at, kind::EXTEND, gen, &payload);
        };
        let refused = |image: PoolImage, what: &str| {
            let err = Inspection::from_image(image).expect_err(what);
            assert!(
                matches!(
                    err,
                    Error::Corrupt {
                        problem: Corruption::Log {
                            slot: 0,
                            problem: crate::error::LogCorruption::BadExtension { .. }
                        },
                        ..
                    }
                ),
                "{what}: {err}"
            );
            let message = err.to_string();
            assert!(
                message.contains("log slot 0") && message.contains("extension entry"),
                "{what}: {message}"
            );
        };
        for (offset, len, what) in [
            (g.heap_end(), CHUNK_SIZE, "past the heap"),
            (g.heap_offset + 64, CHUNK_SIZE, "not on a chunk"),
            (g.heap_offset, CHUNK_SIZE / 2, "part of a chunk"),
            (g.heap_offset, 0, "empty"),
            (g.root_offset, CHUNK_SIZE, "the root"),
        ] {
            let mut bad = image.clone();
            extend(&mut bad, slot, offset, len);
            refused(bad, what);
        }
        let mut looped = image.clone();
        extend(&mut looped, slot, g.heap_offset, CHUNK_SIZE);
        extend(&mut looped, g.heap_offset, g.heap_offset, CHUNK_SIZE);
        refused(looped, "a loop");
    }

    /// A zero-sized inline value repeated 2^64 times fits any type: the walk skips it.
    #[test]
    fn a_zero_sized_inline_slot_is_not_walked() {
        let (image, mut graph) = pool_and_graph();
        graph.types.push(TypeNode {
            name: "Empty".into(),
            fingerprint: 1,
            size: 0,
            align: 1,
            fields: None,
            slots: Vec::new(),
        });
        let empty = (graph.types.len() - 1) as u32;
        graph.types[0].slots.push(Slot {
            offset: 0,
            count: u64::MAX,
            stride: 0,
            kind: SlotTarget::Inline(empty),
        });
        let report = Inspection::from_image(with_table(&image, &graph))
            .unwrap()
            .check();
        assert!(report.is_healthy(), "{report}");
    }
}

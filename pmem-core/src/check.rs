//! The deep consistency check of a pool: headers, logs, heap metadata, and the object graph
//! from the root.
//!
//! [`check`] examines an open pool with its Rust types; [`check_file`] and [`check_image`]
//! examine a pool file or image without them, using the type table the pool carries, and also
//! look at the headers and logs as they are on the media, before recovery. Neither changes the
//! pool: the file variant recovers a private copy.
//!
//! ```
//! # use pmem_core::{Persistent, Pool, PPtr};
//! # #[derive(Persistent)] #[repr(C)] struct Root { head: PPtr<Node> }
//! # #[derive(Persistent)] #[repr(C)] struct Node { value: u64, next: PPtr<Node> }
//! let pool = Pool::<Root>::builder().create_simulated(2 << 20)?;
//! pool.alloc_into(Node { value: 1, next: PPtr::null() }, |tx, p| tx.root_mut().set_head(p))?;
//! let report = pmem_core::check::check(&pool);
//! assert!(report.is_healthy(), "{report}");
//! assert_eq!(report.reachable_objects, 1);
//! # Ok::<(), pmem_core::Error>(())
//! ```

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

mod examined;
mod problem;

pub(crate) use examined::{Examined, TypesProblem};

pub use problem::{PointerProblem, Problem};

use crate::error::{Corruption, Error, Location, LogCorruption, Result};
use crate::heap::{Extent, HeapMeta};
use crate::layout::geometry::HEADER_SIZE;
use crate::layout::header::Header;
use crate::layout::heap::{chunk_kind, CLASSES};
use crate::layout::types::{SlotTarget, TypeGraph};
use crate::log::reader::{parse, starts_nonzero};
use crate::log::recovery::{contents, read_state};
use crate::persist::PoolImage;
use crate::persistent::Persistent;
use crate::pool::Pool;
use crate::region::Region;

/// What a check found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Inconsistencies: each names what is wrong and where.
    pub problems: Vec<Problem>,
    /// Facts worth knowing that are not damage (a recovery that opening would perform, say).
    pub notes: Vec<String>,
    /// Allocated objects, counted from the heap metadata.
    pub live_objects: u64,
    /// Sum of their usable sizes.
    pub allocated_bytes: u64,
    /// Objects reachable from the root.
    pub reachable_objects: u64,
    /// Offsets of allocated objects that nothing reachable from the root points at. Not damage
    /// in itself (an object allocated with `Pool::alloc` is found by type iteration), but a leak
    /// in a structure that should reach everything it allocates.
    pub unreachable: Vec<u64>,
    /// Live objects per type name.
    pub objects_by_type: Vec<(String, u64)>,
}

impl CheckReport {
    /// Whether no problem was found.
    pub fn is_healthy(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, p: Problem) {
        // A badly damaged pool could report the same kind of thing millions of times.
        if self.problems.len() < 1000 {
            self.problems.push(p);
        }
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} live objects ({} bytes), {} reachable from the root, {} unreachable",
            self.live_objects,
            self.allocated_bytes,
            self.reachable_objects,
            self.unreachable.len()
        )?;
        for (name, n) in &self.objects_by_type {
            writeln!(f, "  {n} x {name}")?;
        }
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        if self.problems.is_empty() {
            writeln!(f, "no problems found")?;
        }
        for p in &self.problems {
            writeln!(f, "problem: {p}")?;
        }
        Ok(())
    }
}

/// Checks an open pool against its Rust types: heap metadata, every pointer reachable from the
/// root, and the pool's statistics against a recount.
///
/// # Panics
/// If called from inside a transaction on the same pool and thread, whose uncommitted changes
/// the check would report as damage ([`Error::ReadInTransaction`]).
pub fn check<R: Persistent>(pool: &Pool<R>) -> CheckReport {
    let _guard = match pool.reader() {
        Ok(guard) => guard,
        Err(e) => panic!("pmem_core::check::check: {e}"),
    };
    let shared = pool.shared();
    let graph = TypeGraph::of(R::INFO);
    let mut report = CheckReport::default();
    let meta = *shared.heap.meta();
    check_heap_and_graph(&meta, &graph, &mut report);
    let stats = shared.heap.stats();
    if stats.live_objects != report.live_objects || stats.allocated_bytes != report.allocated_bytes
    {
        report.problem(Problem::StatsMismatch {
            stats_objects: stats.live_objects,
            stats_bytes: stats.allocated_bytes,
            objects: report.live_objects,
            bytes: report.allocated_bytes,
        });
    }
    report
}

/// Checks a pool file without its Rust types. The file is read, not modified; a pool another
/// process has open is refused with [`Error::PoolInUse`].
pub fn check_file(path: impl AsRef<Path>) -> Result<CheckReport> {
    Ok(check_examined(&Examined::open(path.as_ref())?))
}

/// Maps a pool file copy-on-write, under a shared lock held for as long as the image lives, so
/// that no writer that honours the pool lock is active meanwhile. Pages cost memory only once
/// written (recovery of the copy writes a few); the file itself is never modified.
pub fn read_pool_file(path: &Path) -> Result<PoolImage> {
    let location = Location::file(path);
    let file = File::open(path).map_err(|e| Error::io(&location, "open", e))?;
    // SAFETY: flock on an open descriptor.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) } != 0 {
        return Err(Error::PoolInUse { location });
    }
    let metadata = file
        .metadata()
        .map_err(|e| Error::io(&location, "stat", e))?;
    if metadata.is_dir() {
        let e = std::io::Error::from_raw_os_error(libc::EISDIR);
        return Err(Error::io(&location, "read", e));
    }
    let len = usize::try_from(metadata.len()).map_err(|_| {
        Error::io(
            &location,
            "map",
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "file larger than the address space",
            ),
        )
    })?;
    PoolImage::map_private(file, len).map_err(|e| Error::io(&location, "map", e))
}

/// Checks a pool image without its Rust types.
pub fn check_image(image: PoolImage) -> Result<CheckReport> {
    Ok(check_examined(&Examined::from_image(
        image,
        Location::Memory,
    )?))
}

/// The check of a pool examined without its types: what the media showed before recovery,
/// then the heap and the object graph through the pool's type table.
pub(crate) fn check_examined(examined: &Examined) -> CheckReport {
    let mut report = examined.media.clone();
    let r = examined.info.recovery;
    if r != Default::default() {
        report.notes.push(format!(
            "the last transaction was interrupted and recovery {} ({} undo entries, {} redo entries, {} heap operations)",
            if r.rolled_back { "rolled it back" } else { "completed it" },
            r.undo_applied,
            r.redo_applied,
            r.ops_replayed
        ));
    }
    let graph = match &examined.types {
        Ok(graph) => graph.clone(),
        Err(problem) => {
            match problem {
                TypesProblem::Unclaimed => report
                    .notes
                    .push("the root is unclaimed: no type has opened the pool yet".into()),
                TypesProblem::Damaged(p) => report.problem(p.clone()),
            }
            TypeGraph::default()
        }
    };
    if graph.truncated {
        report.notes.push(
            "the type table is truncated: pointers of the missing types are not followed".into(),
        );
    }
    check_heap_and_graph(examined.meta(), &graph, &mut report);
    report
}

/// Headers and logs as they are on the media, before any repair or recovery.
pub(crate) fn check_headers(bytes: &[u8], report: &mut CheckReport) {
    let Some(copies) = Header::copies(bytes) else {
        return; // opening reports it
    };
    let valid = copies.each_ref().map(Header::is_valid);
    for (i, ok) in valid.iter().enumerate() {
        if !ok {
            report.problem(Problem::HeaderCopy {
                copy: i as u8,
                offset: i as u64 * HEADER_SIZE,
            });
        }
    }
    if valid[0] && valid[1] && copies[0].run_id != copies[1].run_id {
        report.notes.push(
            "the header copies differ in run id (a crash while opening); opening repairs it".into(),
        );
    }
    let Some(h) = copies
        .iter()
        .zip(&valid)
        .find(|(_, ok)| **ok)
        .map(|(h, _)| h)
    else {
        return;
    };
    if !h.geometry_is_canonical() || (bytes.len() as u64) < h.pool_size.get() {
        return; // opening reports it
    }
    // Reading the logs writes nothing, so they are read in place, through a region and a
    // domain that are only ever read from and fenced; a copy would cost the pool's size.
    let base = bytes.as_ptr() as *mut u8;
    // SAFETY: `bytes` (at least `pool_size` long, checked above) outlives this function, and
    // nothing below writes through the region or flushes through the domain.
    let region = unsafe { Region::new(base, h.pool_size.get()) };
    let media = crate::media::Media {
        region,
        geometry: h.geometry(),
        // SAFETY: as above; eADR mode only fences.
        domain: unsafe {
            crate::persist::Domain::new(base, h.pool_size.get(), crate::persist::FlushMode::Eadr)
        },
        log_key: h.log_key(),
    };
    let state = read_state(&media);
    if let Err(e) = state.validate(&media) {
        report.problem(Problem::Corrupt(e));
    }
    let in_slot = |slot: u64, problem| Problem::Corrupt(Corruption::Log { slot, problem });
    let pending = state.newest.as_ref().map(|s| s.index);
    let previous = state.previous.as_ref().map(|s| s.index);
    // Recovery needs the previous log while the newest transaction is interrupted; the
    // validation above judged it then.
    let previous_needed = previous.is_some() && !state.newest_ended(&media);
    for index in 0..2u64 {
        let slot = parse(&region, &media.geometry, &media.log_key, index);
        match &slot {
            // The slot the next transaction writes: a crash while it wrote its log (entries
            // and commit record persist in any order under its one fence) can leave its first
            // entry torn and later ones whole. The validation above refuses the one case that
            // proves damage (a fenced entry after it).
            None if starts_nonzero(&region, index)
                && pending.is_none()
                && index == state.next_gen % 2 =>
            {
                report.notes.push(format!(
                    "log slot {index}: a transaction was interrupted while it wrote its log (its first entry is torn); nothing of it reached the pool"
                ))
            }
            None if starts_nonzero(&region, index) && pending.is_none() => {
                report.problem(in_slot(index, LogCorruption::FirstEntryInvalid))
            }
            Some(s) => {
                // The logs recovery reads were judged above. An older log no recovery needs may
                // show an invalid entry before valid ones when the next transaction had begun
                // overwriting it.
                let judged = pending == Some(index) || previous == Some(index);
                let needed = pending == Some(index) || (previous == Some(index) && previous_needed);
                match s.problem {
                    Some(problem @ LogCorruption::Damaged { .. }) if !needed => {
                        report.notes.push(format!(
                            "log slot {index}: {problem}; no recovery reads this log (the next transaction may have been overwriting it)"
                        ))
                    }
                    Some(problem) if !judged => report.problem(in_slot(index, problem)),
                    Some(_) | None => {}
                }
                if let Err(e) = contents(&media, s) {
                    report.problem(in_slot(index, e));
                }
            }
            None => {}
        }
    }
}

/// One allocated object found in the metadata.
#[derive(Debug, Clone, Copy)]
struct Live {
    offset: u64,
    size: u64,
    fingerprint: u64,
    reached: bool,
}

fn check_heap_and_graph(meta: &HeapMeta, graph: &TypeGraph, report: &mut CheckReport) {
    let mut live: Vec<Live> = Vec::new();
    let walked = meta.walk(|extent| match extent {
        Extent::Free { .. } => {}
        Extent::Span {
            first,
            count,
            fingerprint,
        } => {
            for c in first + 1..first + count {
                if meta.entry(c).0.kind != chunk_kind::FREE {
                    report.problem(Problem::SpanOverlap {
                        chunk: c,
                        span: first,
                    });
                }
            }
            meta.for_each_object_in(extent, |offset, size| {
                live.push(Live {
                    offset,
                    size,
                    fingerprint,
                    reached: false,
                })
            });
        }
        Extent::Run {
            first,
            class,
            fingerprint,
        } => {
            let c = &CLASSES[class as usize];
            let words = (c.slots as u64).div_ceil(64);
            if c.slots % 64 != 0 && meta.bitmap_word(first, words - 1) >> (c.slots % 64) != 0 {
                report.problem(Problem::BitmapPastEnd { run: first });
            }
            meta.for_each_object_in(extent, |offset, size| {
                live.push(Live {
                    offset,
                    size,
                    fingerprint,
                    reached: false,
                })
            });
        }
    });
    if let Err(e) = walked {
        report.problem(Problem::Corrupt(e));
        return;
    }
    for pair in live.windows(2) {
        if pair[0].offset + pair[0].size > pair[1].offset {
            report.problem(Problem::ObjectsOverlap {
                first: pair[0].offset,
                second: pair[1].offset,
            });
        }
    }
    report.live_objects = live.len() as u64;
    report.allocated_bytes = live.iter().map(|l| l.size).sum();
    let index: HashMap<u64, usize> = live
        .iter()
        .enumerate()
        .map(|(i, l)| (l.offset, i))
        .collect();
    walk_graph(meta, graph, &mut live, &index, report);
    report.reachable_objects = live.iter().filter(|l| l.reached).count() as u64;
    report.unreachable = live
        .iter()
        .filter(|l| !l.reached)
        .map(|l| l.offset)
        .collect();
    let mut by_type: HashMap<u64, u64> = HashMap::new();
    for l in &live {
        *by_type.entry(l.fingerprint).or_default() += 1;
    }
    let mut by_type: Vec<(String, u64)> = by_type
        .into_iter()
        .map(|(fp, n)| (graph.name_of(fp), n))
        .collect();
    by_type.sort();
    report.objects_by_type = by_type;
}

/// Follows every pointer from the root, checking each lands on the start of a live object of
/// the right type and size.
fn walk_graph(
    meta: &HeapMeta,
    graph: &TypeGraph,
    live: &mut [Live],
    index: &HashMap<u64, usize>,
    report: &mut CheckReport,
) {
    if graph.types.is_empty() {
        return;
    }
    // (offset of a value, its type, how many consecutive values, the object holding it: its
    // offset and type), so that a problem is reported against the object a person knows.
    let root = (meta.geometry.root_offset, 0u32);
    let mut stack: Vec<(u64, u32, u64, (u64, u32))> = vec![(root.0, 0, 1, root)];
    let region = meta.region;
    while let Some((base, ty, count, owner)) = stack.pop() {
        let Some(node) = graph.types.get(ty as usize) else {
            continue;
        };
        for i in 0..count {
            let at = base + i * node.size;
            for slot in &node.slots {
                if let SlotTarget::Inline(t) = slot.kind {
                    if graph.types.get(t as usize).is_none_or(|t| t.size == 0) {
                        continue; // nothing inside a zero-sized value (whatever the count)
                    }
                }
                for k in 0..slot.count {
                    let field = at + slot.offset + k * slot.stride;
                    let (target, elems, target_ty, fingerprint) = match slot.kind {
                        SlotTarget::Inline(t) => {
                            stack.push((field, t, 1, owner));
                            continue;
                        }
                        SlotTarget::Ptr(t) => {
                            let Some(tn) = graph.types.get(t as usize) else {
                                continue;
                            };
                            (region.read_u64(field), 1, t, tn.fingerprint)
                        }
                        SlotTarget::Slice(t) => {
                            let Some(tn) = graph.types.get(t as usize) else {
                                continue;
                            };
                            (
                                region.read_u64(field),
                                region.read_u64(field + 8),
                                t,
                                crate::fingerprint::slice_fingerprint_of(tn.fingerprint),
                            )
                        }
                    };
                    if target == 0 {
                        continue;
                    }
                    let tn = &graph.types[target_ty as usize];
                    let bad = |problem| Problem::Pointer {
                        at: field,
                        owner: owner.0,
                        owner_type: (owner != root).then(|| {
                            graph
                                .types
                                .get(owner.1 as usize)
                                .map_or("?", |t| t.name.as_str())
                                .to_string()
                        }),
                        target,
                        problem,
                    };
                    let object = match meta.object_at(target) {
                        Ok(o) => o,
                        Err(reason) => {
                            report.problem(bad(PointerProblem::Dangling(reason)));
                            continue;
                        }
                    };
                    if !meta.is_allocated(&object) {
                        report.problem(bad(PointerProblem::NotAllocated));
                        continue;
                    }
                    if object.fingerprint() != fingerprint {
                        report.problem(bad(PointerProblem::WrongType {
                            expected: tn.name.clone(),
                        }));
                        continue;
                    }
                    if tn.size == 0 {
                        continue; // nothing inside a zero-sized value to follow
                    }
                    let need = tn.size.saturating_mul(elems);
                    if need > object.size() {
                        report.problem(bad(PointerProblem::TooSmall {
                            needed: need,
                            size: object.size(),
                        }));
                        continue;
                    }
                    let Some(&i) = index.get(&target) else {
                        report.problem(bad(PointerProblem::NotInHeapWalk));
                        continue;
                    };
                    if !live[i].reached {
                        live[i].reached = true;
                        stack.push((target, target_ty, elems, (target, target_ty)));
                    }
                }
            }
        }
    }
}

//! `pmem info`: what a pool holds, as text or JSON.

use std::collections::BTreeMap;
use std::io::Write;

use pmem_core::inspect::{Inspection, Slot, SlotTarget, TypeGraph, TypeNode};
use pmem_core::{FlushMode, HeapStats, LogWritesChoice, PoolInfo, RecoveryReport};

use crate::fmt::{bytes_and_human, percent, utc};
use crate::json::Json;
use crate::{Failure, InfoArgs};

const PAGE: u64 = 4096;

/// The root sizes that can claim an unclaimed root with `room` bytes: those needing the same
/// number of 4 KiB pages.
pub(crate) fn claimable(room: u64) -> (u64, u64) {
    let pages = room.max(1).div_ceil(PAGE);
    ((pages - 1) * PAGE + 1, pages * PAGE)
}

/// Live objects of one type.
struct TypeCount {
    name: String,
    count: u64,
    bytes: u64,
}

/// Everything `info` prints, gathered once for both output forms.
struct Facts<'a> {
    file: String,
    info: &'a PoolInfo,
    stats: HeapStats,
    by_type: Vec<TypeCount>,
    graph: Option<&'a TypeGraph>,
}

pub(crate) fn run(args: &InfoArgs, out: &mut impl Write) -> Result<u8, Failure> {
    let inspection = crate::inspect(&args.file)?;
    let facts = gather(&inspection, args.file.display().to_string());
    if args.json {
        out.write_all(to_json(&facts).pretty().as_bytes())?;
    } else {
        write_text(&facts, out)?;
    }
    Ok(0)
}

fn gather(inspection: &Inspection, file: String) -> Facts<'_> {
    let info = inspection.info();
    let mut by_name: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for o in inspection.objects() {
        let e = by_name.entry(o.type_name).or_default();
        e.0 += 1;
        e.1 += o.size;
    }
    Facts {
        file,
        info,
        stats: inspection.stats(),
        by_type: by_name
            .into_iter()
            .map(|(name, (count, bytes))| TypeCount { name, count, bytes })
            .collect(),
        graph: inspection.type_graph(),
    }
}

fn is_claimed(info: &PoolInfo) -> bool {
    info.root_fingerprint != 0
}

pub(crate) fn layout_name(info: &PoolInfo) -> String {
    if info.layout_name.is_empty() {
        "(none)".into()
    } else {
        format!("{:?}", info.layout_name)
    }
}

/// What recovery did to the inspected copy, which is what opening the pool would do.
fn recovery_text(r: &RecoveryReport) -> String {
    if *r == RecoveryReport::default() {
        "nothing to do: no transaction was interrupted".into()
    } else if r.rolled_back {
        format!(
            "the last transaction was interrupted before it committed: opening the pool rolls it back ({} undo entries)",
            r.undo_applied
        )
    } else {
        format!(
            "the last transaction committed but its writes may not all be in place: opening the pool completes them ({} redo entries, {} heap operations)",
            r.redo_applied, r.ops_replayed
        )
    }
}

/// The flush mode a program opening this file would get. An inspection works on an in-memory
/// copy, so its own mode says nothing; whether the file is on DAX is decided when a program
/// maps it.
fn flush_text() -> String {
    let cpu = FlushMode::best_cpu();
    let (log_writes, why) = cpu.log_writes();
    let why = match why {
        LogWritesChoice::CpuTable { cpu } => format!("measured for {cpu}"),
        LogWritesChoice::Calibrated {
            cpu,
            flushed_ns,
            non_temporal_ns,
        } => format!(
            "calibrated on {cpu}: {flushed_ns} ns flushed, {non_temporal_ns} ns non-temporal per line"
        ),
        _ => "by the mode".to_string(),
    };
    let mut text = format!(
        "msync for an ordinary file; {cpu} (this CPU's cache flush) with {log_writes} log lines ({why}) on a DAX file system or with PMEM_FORCE_PMEM=1"
    );
    if std::env::var("PMEM_FORCE_PMEM").is_ok_and(|v| v == "1") {
        text.push_str(&format!(
            " (set in this environment: a program run here would use {cpu})"
        ));
    }
    text
}

fn type_name(graph: &TypeGraph, index: u32) -> String {
    graph
        .types
        .get(index as usize)
        .map_or_else(|| format!("type #{index}"), |t| t.name.clone())
}

/// A pointer slot for people: `PPtr<Node>`, `PSlice<Node> x4 (stride 16)`, `inline Pair`.
fn slot_text(graph: &TypeGraph, slot: &Slot) -> String {
    let what = match slot.kind {
        SlotTarget::Ptr(t) => format!("PPtr<{}>", type_name(graph, t)),
        SlotTarget::Slice(t) => format!("PSlice<{}>", type_name(graph, t)),
        SlotTarget::Inline(t) => format!("inline {}", type_name(graph, t)),
    };
    if slot.count == 1 {
        what
    } else {
        format!("{what} x{} (stride {})", slot.count, slot.stride)
    }
}

/// The pointer fields of type `ty`, looking through inline values: a `PPtr<T>` field is itself
/// an inline value of the type table's `PPtr` type, whose one slot is the pointer. An inline
/// array of values holding one pointer each becomes one slot with a count; anything more
/// nested stays an inline slot.
fn pointer_slots(graph: &TypeGraph, ty: u32, depth: u32) -> Vec<Slot> {
    let Some(node) = graph.types.get(ty as usize) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for slot in &node.slots {
        let SlotTarget::Inline(t) = slot.kind else {
            out.push(*slot);
            continue;
        };
        if depth >= crate::MAX_INLINE_DEPTH {
            out.push(*slot);
            continue;
        }
        let inner = pointer_slots(graph, t, depth + 1);
        if slot.count == 1 {
            out.extend(inner.into_iter().map(|s| Slot {
                offset: slot.offset + s.offset,
                ..s
            }));
        } else if let [one @ Slot { count: 1, .. }] = inner[..] {
            out.push(Slot {
                offset: slot.offset + one.offset,
                kind: one.kind,
                ..*slot
            });
        } else if !inner.is_empty() {
            out.push(*slot);
        }
    }
    out
}

/// Whether a type of the table is the pointer type itself (`PPtr<T>`, `PSlice<T>`), listed
/// through the fields that hold it rather than on its own.
fn is_pointer_type(graph: &TypeGraph, ty: usize) -> bool {
    let t = &graph.types[ty];
    ty != 0
        && (t.name == "PPtr" || t.name == "PSlice")
        && matches!(
            t.slots[..],
            [Slot {
                offset: 0,
                count: 1,
                kind: SlotTarget::Ptr(_) | SlotTarget::Slice(_),
                ..
            }]
        )
}

/// The types worth listing, with their pointer fields.
fn listed_types(graph: &TypeGraph) -> Vec<(&TypeNode, Vec<Slot>)> {
    (0..graph.types.len())
        .filter(|&i| !is_pointer_type(graph, i))
        .map(|i| (&graph.types[i], pointer_slots(graph, i as u32, 0)))
        .collect()
}

fn write_text(f: &Facts<'_>, out: &mut impl Write) -> std::io::Result<()> {
    let info = f.info;
    writeln!(out, "pool file     {}", f.file)?;
    writeln!(
        out,
        "format        version {}.{}",
        info.version.0, info.version.1
    )?;
    writeln!(out, "uuid          {}", info.uuid_string())?;
    writeln!(out, "layout        {}", layout_name(info))?;
    writeln!(out, "created       {}", utc(info.created_unix_secs))?;
    writeln!(
        out,
        "run id        {} (times the pool has been opened, its creation included)",
        f.info.run_id
    )?;
    if is_claimed(info) {
        writeln!(
            out,
            "root type     {}, {} bytes, fingerprint {:#018x}",
            info.root_type, info.root_size, info.root_fingerprint
        )?;
    } else {
        let (least, most) = claimable(info.root_size);
        writeln!(
            out,
            "root type     unclaimed: the first program to open the pool claims it for its root type, which must be {least} to {most} bytes"
        )?;
    }

    let s = &f.stats;
    writeln!(out)?;
    writeln!(out, "sizes")?;
    writeln!(out, "  pool          {}", bytes_and_human(info.pool_size))?;
    writeln!(out, "  heap          {}", bytes_and_human(s.heap_bytes))?;
    writeln!(
        out,
        "  in use        {}, {} of the heap (chunks holding runs or large objects)",
        bytes_and_human(s.bytes_in_use),
        percent(s.bytes_in_use, s.heap_bytes)
    )?;
    writeln!(
        out,
        "  allocated     {} (usable sizes of live objects)",
        bytes_and_human(s.allocated_bytes)
    )?;
    writeln!(
        out,
        "  live objects  {}, {} of them large (over 32 KiB, in whole chunks)",
        s.live_objects, s.large_objects
    )?;

    writeln!(out)?;
    if s.classes.is_empty() {
        writeln!(out, "heap by size class: no runs")?;
    } else {
        writeln!(out, "heap by size class")?;
        writeln!(
            out,
            "  {:>8}  {:>6}  {:>12}",
            "unit", "runs", "live objects"
        )?;
        for c in &s.classes {
            writeln!(
                out,
                "  {:>8}  {:>6}  {:>12}",
                c.unit, c.runs, c.live_objects
            )?;
        }
    }

    writeln!(out)?;
    if f.by_type.is_empty() {
        writeln!(out, "objects by type: none")?;
    } else {
        writeln!(out, "objects by type")?;
        writeln!(out, "  {:>10}  {:>14}  type", "objects", "bytes")?;
        for t in &f.by_type {
            writeln!(out, "  {:>10}  {:>14}  {}", t.count, t.bytes, t.name)?;
        }
    }

    writeln!(out)?;
    match f.graph {
        None if is_claimed(info) => writeln!(
            out,
            "types: the pool's type table is missing or damaged (`pmem check` says more)"
        )?,
        None => writeln!(out, "types: none recorded yet (the root is unclaimed)")?,
        Some(graph) => {
            writeln!(
                out,
                "types (the pool's type table{})",
                if graph.truncated { ", truncated" } else { "" }
            )?;
            for (t, slots) in listed_types(graph) {
                writeln!(
                    out,
                    "  {}, {} bytes, fingerprint {:#018x}",
                    t.name, t.size, t.fingerprint
                )?;
                for slot in &slots {
                    writeln!(
                        out,
                        "      +{:<6} {}",
                        format!("{:#x}", slot.offset),
                        slot_text(graph, slot)
                    )?;
                }
            }
        }
    }

    writeln!(out)?;
    writeln!(out, "recovery      {}", recovery_text(&info.recovery))?;
    writeln!(out, "flush mode    {}", flush_text())?;
    Ok(())
}

fn hex(v: u64) -> Json {
    Json::Str(format!("{v:#018x}"))
}

fn to_json(f: &Facts<'_>) -> Json {
    let info = f.info;
    let s = &f.stats;
    let root = if is_claimed(info) {
        Json::Object(vec![
            ("claimed", true.into()),
            ("type", info.root_type.as_str().into()),
            ("size", info.root_size.into()),
            ("fingerprint", hex(info.root_fingerprint)),
        ])
    } else {
        let (least, most) = claimable(info.root_size);
        Json::Object(vec![
            ("claimed", false.into()),
            ("type", Json::Null),
            ("room", most.into()),
            (
                "claimable_sizes",
                Json::Array(vec![least.into(), most.into()]),
            ),
        ])
    };
    let classes = s
        .classes
        .iter()
        .map(|c| {
            Json::Object(vec![
                ("unit", c.unit.into()),
                ("runs", c.runs.into()),
                ("live_objects", c.live_objects.into()),
            ])
        })
        .collect();
    let by_type = f
        .by_type
        .iter()
        .map(|t| {
            Json::Object(vec![
                ("type", t.name.as_str().into()),
                ("objects", t.count.into()),
                ("bytes", t.bytes.into()),
            ])
        })
        .collect();
    let types = f.graph.map_or(Json::Null, |graph| {
        Json::Array(
            listed_types(graph)
                .into_iter()
                .map(|(t, slots)| {
                    let slots = slots
                        .iter()
                        .map(|slot| {
                            let (kind, target) = match slot.kind {
                                SlotTarget::Ptr(t) => ("ptr", t),
                                SlotTarget::Slice(t) => ("slice", t),
                                SlotTarget::Inline(t) => ("inline", t),
                            };
                            Json::Object(vec![
                                ("offset", slot.offset.into()),
                                ("count", slot.count.into()),
                                ("stride", slot.stride.into()),
                                ("kind", kind.into()),
                                ("target", type_name(graph, target).into()),
                            ])
                        })
                        .collect();
                    Json::Object(vec![
                        ("name", t.name.as_str().into()),
                        ("size", t.size.into()),
                        ("fingerprint", hex(t.fingerprint)),
                        ("pointers", Json::Array(slots)),
                    ])
                })
                .collect(),
        )
    });
    let r = &info.recovery;
    Json::Object(vec![
        ("file", f.file.as_str().into()),
        (
            "version",
            Json::Object(vec![
                ("major", u64::from(info.version.0).into()),
                ("minor", u64::from(info.version.1).into()),
            ]),
        ),
        ("uuid", info.uuid_string().into()),
        ("layout", info.layout_name.as_str().into()),
        ("created_unix_secs", info.created_unix_secs.into()),
        ("created", utc(info.created_unix_secs).into()),
        ("run_id", f.info.run_id.into()),
        ("root", root),
        ("pool_size", info.pool_size.into()),
        ("heap_size", s.heap_bytes.into()),
        ("bytes_in_use", s.bytes_in_use.into()),
        ("allocated_bytes", s.allocated_bytes.into()),
        ("live_objects", s.live_objects.into()),
        ("large_objects", s.large_objects.into()),
        ("size_classes", Json::Array(classes)),
        ("objects_by_type", Json::Array(by_type)),
        ("types", types),
        (
            "recovery",
            Json::Object(vec![
                ("needed", (*r != RecoveryReport::default()).into()),
                ("rolls_back", r.rolled_back.into()),
                ("undo_entries", r.undo_applied.into()),
                ("redo_entries", r.redo_applied.into()),
                ("heap_operations", r.ops_replayed.into()),
                ("description", recovery_text(r).into()),
            ]),
        ),
        (
            "flush_mode",
            Json::Object(vec![
                ("ordinary_file", "msync".into()),
                ("dax_or_forced", FlushMode::best_cpu().name().into()),
                (
                    "log_writes",
                    FlushMode::best_cpu().log_writes().0.name().into(),
                ),
                ("description", flush_text().into()),
            ]),
        ),
    ])
}

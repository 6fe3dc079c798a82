//! `pmem dump`: list objects, or show one object or the root as a hex dump with its pointers.

use std::io::Write;

use pmem_core::inspect::{Inspection, ObjectInfo, SlotTarget, TypeGraph};
use pmem_core::Error;

use crate::fmt::hexdump;
use crate::{DumpArgs, Failure};

/// Pointers listed per dump at most.
const MAX_POINTERS: usize = 1000;

pub(crate) fn run(args: &DumpArgs, out: &mut impl Write) -> Result<u8, Failure> {
    let inspection = crate::inspect(&args.file)?;
    if let Some(offset) = args.object {
        let object = inspection.object_at(offset).map_err(|e| {
            let reason = match e {
                Error::InvalidPointer { reason, .. } => reason.to_string(),
                other => other.to_string(),
            };
            Failure::new(
                Failure::UNUSABLE,
                format!(
                    "pool file {}: no object starts at {offset:#x}: {reason}",
                    args.file.display()
                ),
            )
        })?;
        dump_object(&inspection, &object, args.limit, out)?;
    } else if args.root {
        dump_root(&inspection, args.limit, out)?;
    } else {
        list(&inspection, args, out)?;
    }
    Ok(0)
}

fn list(inspection: &Inspection, args: &DumpArgs, out: &mut impl Write) -> Result<(), Failure> {
    let mut objects = inspection.objects();
    if let Some(name) = &args.type_name {
        let known = objects.iter().any(|o| o.type_name == *name)
            || inspection.type_graph().is_some_and(|g| {
                g.types
                    .iter()
                    .any(|t| t.name == *name || format!("[{}]", t.name) == *name)
            });
        if !known {
            let mut names: Vec<&str> = objects.iter().map(|o| o.type_name.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            return Err(Failure::new(
                Failure::UNUSABLE,
                format!(
                    "pool file {}: no type named {name:?}; its objects are of types: {}",
                    args.file.display(),
                    if names.is_empty() {
                        "(none: the pool has no objects)".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        }
        objects.retain(|o| o.type_name == *name);
    }
    if objects.is_empty() {
        writeln!(
            out,
            "no objects{}",
            args.type_name
                .as_ref()
                .map_or(String::new(), |n| format!(" of type {n}"))
        )?;
        return Ok(());
    }
    let total = objects.len();
    let bytes: u64 = objects.iter().map(|o| o.size).sum();
    let shown = args.limit.map_or(total, |n| {
        usize::try_from(n).unwrap_or(usize::MAX).min(total)
    });
    writeln!(out, "{:>18}  {:>10}  type", "offset", "size")?;
    for o in &objects[..shown] {
        writeln!(out, "{:>#18x}  {:>10}  {}", o.offset, o.size, o.type_name)?;
    }
    write!(
        out,
        "{total} object{}, {bytes} bytes",
        if total == 1 { "" } else { "s" }
    )?;
    if shown < total {
        write!(out, " ({} not shown: --limit {shown})", total - shown)?;
    }
    writeln!(out)?;
    Ok(())
}

fn dump_object(
    inspection: &Inspection,
    object: &ObjectInfo,
    limit: Option<u64>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    writeln!(
        out,
        "object at {:#x}: {}, {} bytes, type fingerprint {:#018x}",
        object.offset, object.type_name, object.size, object.fingerprint
    )?;
    let bytes = inspection
        .bytes(object.offset, object.size)
        .map_err(|e| Failure::new(Failure::UNUSABLE, e.to_string()))?;
    dump_bytes(object.offset, bytes, limit, out)?;
    let graph = inspection.type_graph();
    if let Some((graph, index)) = graph.and_then(|g| {
        g.types
            .iter()
            .position(|t| t.fingerprint == object.fingerprint)
            .map(|i| (g, i as u32))
    }) {
        write_pointers(inspection, graph, index, object.offset, bytes, out)?;
    }
    Ok(())
}

fn dump_root(
    inspection: &Inspection,
    limit: Option<u64>,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let info = inspection.info();
    let bytes = inspection.root();
    let offset = info.root_offset;
    if info.root_fingerprint == 0 {
        writeln!(
            out,
            "root at {offset:#x}: unclaimed, {} bytes of room",
            bytes.len()
        )?;
    } else {
        writeln!(
            out,
            "root at {offset:#x}: {}, {} bytes, type fingerprint {:#018x}",
            info.root_type, info.root_size, info.root_fingerprint
        )?;
    }
    dump_bytes(offset, bytes, limit, out)?;
    if let Some(graph) = inspection.type_graph() {
        write_pointers(inspection, graph, 0, offset, bytes, out)?;
    }
    Ok(())
}

fn dump_bytes(
    offset: u64,
    bytes: &[u8],
    limit: Option<u64>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let shown = limit.map_or(bytes.len(), |n| {
        usize::try_from(n).unwrap_or(usize::MAX).min(bytes.len())
    });
    hexdump(out, offset, &bytes[..shown])?;
    if shown < bytes.len() {
        writeln!(
            out,
            "({} more bytes not shown: --limit {shown})",
            bytes.len() - shown
        )?;
    }
    Ok(())
}

/// One pointer found in a value.
struct Pointer {
    /// Offset within the value.
    at: u64,
    kind: SlotTarget,
    target: u64,
    /// Elements, for a slice.
    len: u64,
}

/// Collects the pointers of a value of type `ty` at `rel` within `bytes`.
fn collect(
    graph: &TypeGraph,
    ty: u32,
    rel: u64,
    bytes: &[u8],
    depth: u32,
    found: &mut Vec<Pointer>,
) {
    let Some(node) = graph.types.get(ty as usize) else {
        return;
    };
    let read = |at: u64| -> Option<u64> {
        let at = usize::try_from(at).ok()?;
        let word = bytes.get(at..at.checked_add(8)?)?;
        Some(u64::from_le_bytes(word.try_into().ok()?))
    };
    for slot in &node.slots {
        for k in 0..slot.count {
            if found.len() >= MAX_POINTERS {
                return;
            }
            let at = rel + slot.offset + k * slot.stride;
            match slot.kind {
                SlotTarget::Inline(t) if depth < crate::MAX_INLINE_DEPTH => {
                    collect(graph, t, at, bytes, depth + 1, found)
                }
                SlotTarget::Inline(_) => {}
                kind => {
                    let Some(target) = read(at) else { continue };
                    let len = match kind {
                        SlotTarget::Slice(_) => read(at + 8).unwrap_or(0),
                        _ => 1,
                    };
                    found.push(Pointer {
                        at,
                        kind,
                        target,
                        len,
                    });
                }
            }
        }
    }
}

/// Lists the pointers of a value of graph type `ty` at pool offset `base`, with what each
/// points at.
fn write_pointers(
    inspection: &Inspection,
    graph: &TypeGraph,
    ty: u32,
    base: u64,
    bytes: &[u8],
    out: &mut impl Write,
) -> std::io::Result<()> {
    let mut found = Vec::new();
    collect(graph, ty, 0, bytes, 0, &mut found);
    if found.is_empty() {
        return Ok(());
    }
    writeln!(out, "pointers")?;
    for p in &found {
        let name_of = |t: u32| graph.types.get(t as usize).map_or("?", |n| n.name.as_str());
        // `collect` yields pointers and slices only.
        let (expected, what) = match p.kind {
            SlotTarget::Slice(t) => (
                format!("[{}]", name_of(t)),
                format!("PSlice<{}>", name_of(t)),
            ),
            SlotTarget::Ptr(t) | SlotTarget::Inline(t) => {
                (name_of(t).to_string(), format!("PPtr<{}>", name_of(t)))
            }
        };
        let target = if p.target == 0 {
            "null".to_string()
        } else {
            let elements = match p.kind {
                SlotTarget::Slice(_) => format!(" ({} elements)", p.len),
                _ => String::new(),
            };
            let there = match inspection.object_at(p.target) {
                Ok(o) if o.type_name == expected => format!("{}, {} bytes", o.type_name, o.size),
                Ok(o) => format!("wrong type: a {}, {} bytes", o.type_name, o.size),
                Err(Error::InvalidPointer { reason, .. }) => format!("invalid: {reason}"),
                Err(e) => format!("invalid: {e}"),
            };
            format!("{:#x}{elements}: {there}", p.target)
        };
        writeln!(
            out,
            "  {:<10} {what:<20} -> {target}",
            format!("{:#x}", base + p.at)
        )?;
    }
    Ok(())
}

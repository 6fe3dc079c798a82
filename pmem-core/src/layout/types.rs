//! The type table: every type reachable from the root, with its fields and where it holds
//! pointers, so that a tool that does not know the program's types (`pmem check`, `pmem dump`)
//! can still walk the object graph and name what it finds, and so that opening a pool can
//! check every type reachable from the root, not only the root.
//!
//! ```text
//! magic "PMEMTYP2" | count u32 | truncated u32 | types... | (zeros) | xxh3-64 of all before it
//! type  = fingerprint u64 | size u64 | align u64 | name (len u8, bytes)
//!         | field count u16 (0xffff: not recorded) | fields | slot count u16 | slots
//! field = name (len u8, bytes) | type name (len u8, bytes) | offset u64 | size u64
//!         | fingerprint u64
//! slot  = offset u64 | count u64 | stride u64 | kind u8 (1 ptr, 2 slice, 3 inline) | target u32
//! ```
//!
//! Tables written before fields were recorded (magic "PMEMTYPE") have neither `align` nor the
//! field list; they are read with their fields not recorded.

use std::collections::{HashMap, HashSet};

use super::geometry::TYPE_TABLE_SIZE;
use super::header::{describe_difference, StoredField, StoredType};
use crate::error::TypeTableProblem;
use crate::persistent::{SlotKind, TypeInfo};

const MAGIC: &[u8; 8] = b"PMEMTYP2";
/// The magic of tables without alignment and fields.
const MAGIC_V1: &[u8; 8] = b"PMEMTYPE";
/// A field count meaning the fields were not recorded.
const FIELDS_NOT_RECORDED: u16 = u16::MAX;

/// A type of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeNode {
    /// The type's name.
    pub name: String,
    /// Its layout fingerprint.
    pub fingerprint: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Its alignment (0 if not recorded).
    pub align: u64,
    /// Its fields in declaration order, if recorded (a table too small for every type's fields,
    /// or one written before fields were recorded, has none).
    pub fields: Option<Vec<TypeField>>,
    /// Where it holds pointers.
    pub slots: Vec<Slot>,
}

/// One field of a [`TypeNode`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeField {
    /// The field's name.
    pub name: String,
    /// Its type as written in the source.
    pub type_name: String,
    /// Its offset in the type.
    pub offset: u64,
    /// Its size.
    pub size: u64,
    /// Its type's layout fingerprint.
    pub fingerprint: u64,
}

/// Where a type holds pointers: `count` occurrences of `kind`, `stride` bytes apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Offset of the first occurrence.
    pub offset: u64,
    /// Occurrences.
    pub count: u64,
    /// Bytes between occurrences.
    pub stride: u64,
    /// What occurs there.
    pub kind: SlotTarget,
}

/// What a [`Slot`] holds, by index into [`TypeGraph::types`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotTarget {
    /// A `PPtr` to that type.
    Ptr(u32),
    /// A `PSlice` of that element type.
    Slice(u32),
    /// A value of that type, whose own slots apply.
    Inline(u32),
}

/// A type of the program that differs from the type the pool recorded at its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TypeDifference {
    /// The program's name for the type.
    pub type_name: String,
    /// The first difference.
    pub difference: Box<crate::error::TypeDifference>,
}

/// The types reachable from a root type; `types[0]` is the root.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TypeGraph {
    /// The types, root first.
    pub types: Vec<TypeNode>,
    /// Whether the table was too small for all of them (the walk stops at missing types).
    pub truncated: bool,
}

impl TypeGraph {
    /// The graph of types reachable from `root`.
    pub fn of(root: &'static TypeInfo) -> TypeGraph {
        let mut graph = TypeGraph::default();
        let mut index: HashMap<u64, u32> = HashMap::new();
        let mut queue: Vec<&'static TypeInfo> = vec![root];
        index.insert(root.fingerprint, 0);
        graph.types.push(TypeNode::of(root));
        let mut next = 0;
        while next < queue.len() {
            let info = queue[next];
            let mut slots = Vec::new();
            for s in info.pointers.iter().filter(|s| s.count > 0) {
                let (target, make): (&'static TypeInfo, fn(u32) -> SlotTarget) = match s.kind {
                    SlotKind::Ptr(f) => (f(), SlotTarget::Ptr),
                    SlotKind::Slice(f) => (f(), SlotTarget::Slice),
                    SlotKind::Inline(f) => (f(), SlotTarget::Inline),
                };
                let i = *index.entry(target.fingerprint).or_insert_with(|| {
                    queue.push(target);
                    graph.types.push(TypeNode::of(target));
                    (graph.types.len() - 1) as u32
                });
                slots.push(Slot {
                    offset: s.offset as u64,
                    count: s.count as u64,
                    stride: s.stride as u64,
                    kind: make(i),
                });
            }
            graph.types[next].slots = slots;
            next += 1;
        }
        graph
    }

    /// The table bytes, exactly `TYPE_TABLE_SIZE` long. If the types do not fit with their
    /// fields, they are written without fields; types that still do not fit are left out and
    /// the table marked truncated.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let with_fields = self.encode_with(true);
        if with_fields.1 == self.types.len() {
            return with_fields.0;
        }
        self.encode_with(false).0
    }

    /// The table bytes and how many types they hold.
    fn encode_with(&self, fields: bool) -> (Vec<u8>, usize) {
        let limit = TYPE_TABLE_SIZE as usize - 8;
        let mut out = Vec::with_capacity(TYPE_TABLE_SIZE as usize);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[0u8; 8]); // count and truncated, patched below
        let mut count = 0u32;
        for t in &self.types {
            let mut entry = Vec::new();
            entry.extend_from_slice(&t.fingerprint.to_le_bytes());
            entry.extend_from_slice(&t.size.to_le_bytes());
            entry.extend_from_slice(&t.align.to_le_bytes());
            push_str(&mut entry, &t.name);
            match t
                .fields
                .as_ref()
                .filter(|f| fields && f.len() < FIELDS_NOT_RECORDED as usize)
            {
                Some(list) => {
                    entry.extend_from_slice(&(list.len() as u16).to_le_bytes());
                    for f in list {
                        push_str(&mut entry, &f.name);
                        push_str(&mut entry, &f.type_name);
                        for v in [f.offset, f.size, f.fingerprint] {
                            entry.extend_from_slice(&v.to_le_bytes());
                        }
                    }
                }
                None => entry.extend_from_slice(&FIELDS_NOT_RECORDED.to_le_bytes()),
            }
            entry.extend_from_slice(&(t.slots.len().min(u16::MAX as usize) as u16).to_le_bytes());
            for s in t.slots.iter().take(u16::MAX as usize) {
                let (kind, target) = match s.kind {
                    SlotTarget::Ptr(i) => (1u8, i),
                    SlotTarget::Slice(i) => (2, i),
                    SlotTarget::Inline(i) => (3, i),
                };
                for v in [s.offset, s.count, s.stride] {
                    entry.extend_from_slice(&v.to_le_bytes());
                }
                entry.push(kind);
                entry.extend_from_slice(&target.to_le_bytes());
            }
            if out.len() + entry.len() > limit {
                break;
            }
            out.extend_from_slice(&entry);
            count += 1;
        }
        let truncated = self.truncated || (count as usize) < self.types.len();
        out[8..12].copy_from_slice(&count.to_le_bytes());
        out[12..16].copy_from_slice(&(truncated as u32).to_le_bytes());
        out.resize(limit, 0);
        let sum = xxhash_rust::xxh3::xxh3_64(&out);
        out.extend_from_slice(&sum.to_le_bytes());
        (out, count as usize)
    }

    /// The name of the type with this fingerprint: `[T]` for a slice of `T`, the fingerprint in
    /// hex for a type the graph does not hold.
    pub(crate) fn name_of(&self, fingerprint: u64) -> String {
        if let Some(t) = self.types.iter().find(|t| t.fingerprint == fingerprint) {
            return t.name.clone();
        }
        let slice_of =
            |t: &&TypeNode| crate::fingerprint::slice_fingerprint_of(t.fingerprint) == fingerprint;
        match self.types.iter().find(slice_of) {
            Some(t) => format!("[{}]", t.name),
            None => format!("type {fingerprint:#018x}"),
        }
    }

    /// Checks that every slot lies inside its type and names a type of the graph (or, in a
    /// truncated table, one left out of it), so that a walk guided by the graph reads only
    /// inside the objects it visits, that no type contains itself, and that a walk's work is
    /// bounded by the table. `Err` names the first type that breaks one of these. Time is
    /// proportional to the table.
    pub(crate) fn validate(&self) -> Result<(), TypeTableProblem> {
        for t in &self.types {
            for s in t.slots.iter().filter(|s| s.count > 0) {
                let (target, width) = match s.kind {
                    SlotTarget::Ptr(i) => (i, 8),
                    SlotTarget::Slice(i) => (i, 16),
                    SlotTarget::Inline(i) => (i, self.types.get(i as usize).map_or(0, |n| n.size)),
                };
                let last = (s.count - 1)
                    .checked_mul(s.stride)
                    .and_then(|x| x.checked_add(s.offset));
                let fits = last
                    .and_then(|l| l.checked_add(width))
                    .is_some_and(|end| end <= t.size);
                if (self.types.get(target as usize).is_none() && !self.truncated)
                    || !fits
                    || (s.count > 1 && s.stride < width)
                {
                    return Err(TypeTableProblem::SlotOutside {
                        type_name: t.name.clone(),
                        offset: s.offset,
                    });
                }
            }
        }
        let order = self.check_inline_acyclic()?;
        self.check_walk_cost(&order)
    }

    /// Compares the types reachable from `root` in the program with the types this table
    /// recorded at the same places: from the root, through each pointer and inline slot to the
    /// type the table names for it. A pointer's fingerprint names only its target type, not the
    /// target's layout, so the root's matching says nothing about the types behind it; this
    /// does. Types the table does not hold (it is truncated, or older than them) are new to the
    /// pool, which is compatible. Time is proportional to the program's types times the table's.
    ///
    /// The table must have passed [`validate`](Self::validate).
    pub(crate) fn check_program(&self, root: &'static TypeInfo) -> Result<(), TypeDifference> {
        let mut seen: HashSet<(u64, u32)> = HashSet::new();
        let mut work: Vec<(&'static TypeInfo, u32)> = vec![(root, 0)];
        while let Some((info, at)) = work.pop() {
            if !seen.insert((info.fingerprint, at)) {
                continue;
            }
            let Some(stored) = self.types.get(at as usize) else {
                continue; // left out of a truncated table
            };
            if stored.fingerprint != info.fingerprint || stored.size != info.size as u64 {
                return Err(TypeDifference {
                    type_name: display_name(info),
                    difference: Box::new(describe_difference(&info.layout, &stored.as_stored())),
                });
            }
            for slot in info.pointers.iter().filter(|s| s.count > 0) {
                let recorded = stored
                    .slots
                    .iter()
                    .filter(|s| s.count > 0 && s.offset == slot.offset as u64)
                    .find_map(|s| match (s.kind, slot.kind) {
                        (SlotTarget::Ptr(i), SlotKind::Ptr(f))
                        | (SlotTarget::Slice(i), SlotKind::Slice(f))
                        | (SlotTarget::Inline(i), SlotKind::Inline(f)) => Some((f(), i)),
                        _ => None,
                    });
                // Equal fingerprints mean equal fields, so the table has the slot unless it was
                // damaged into another valid table; there is then nothing to compare with.
                if let Some(next) = recorded {
                    work.push(next);
                }
            }
        }
        Ok(())
    }

    /// A walk guided by the graph visits, in a value of type `t`, each pointer and each inline
    /// value of non-zero size (however deep): [`walk_steps`](Self::walk_steps) of them. Inline
    /// values at one depth are disjoint non-empty parts of the value, and so are its pointers,
    /// so for any real type that is at most `(size + 1) * (depth + 1)`, `depth` being how deep
    /// inline values nest in it. A table can claim more only by overlapping slots (a type
    /// holding the next one twice at the same offset, say, whose walk is exponential in the
    /// depth): such a table is refused, so that the work of a walk is bounded by the size of the
    /// values it visits times the size of the table, never by the expansion of the graph.
    ///
    /// `order` lists every type after the targets of its inline slots. Time is proportional to
    /// the table.
    fn check_walk_cost(&self, order: &[usize]) -> Result<(), TypeTableProblem> {
        let steps = self.walk_steps(order);
        let mut depth = vec![0u64; self.types.len()];
        for &t in order {
            depth[t] = self
                .inline_targets(t)
                .map(|u| depth[u] + 1)
                .max()
                .unwrap_or(0);
            let bound = (self.types[t].size.saturating_add(1)).saturating_mul(depth[t] + 1);
            if steps[t] > bound {
                return Err(TypeTableProblem::OverlappingSlots {
                    type_name: self.types[t].name.clone(),
                    size: self.types[t].size,
                    steps: steps[t],
                });
            }
        }
        Ok(())
    }

    /// Per type, the pointers and non-empty inline values a walk of one value visits (saturating),
    /// memoized in `order` (every type after the targets of its inline slots).
    fn walk_steps(&self, order: &[usize]) -> Vec<u64> {
        let mut steps = vec![0u64; self.types.len()];
        for &t in order {
            let mut total = 0u64;
            for s in self.types[t].slots.iter().filter(|s| s.count > 0) {
                let each = match s.kind {
                    SlotTarget::Ptr(_) | SlotTarget::Slice(_) => 1,
                    SlotTarget::Inline(u) => match self.types.get(u as usize) {
                        // Not walked: nothing inside, or left out of a truncated table.
                        Some(n) if n.size == 0 => 0,
                        None => 0,
                        Some(_) => steps[u as usize].saturating_add(1),
                    },
                };
                total = total.saturating_add(s.count.saturating_mul(each));
            }
            steps[t] = total;
        }
        steps
    }

    /// The targets of `t`'s inline slots of non-zero size: those a walk descends into.
    fn inline_targets(&self, t: usize) -> impl Iterator<Item = usize> + '_ {
        self.types[t]
            .slots
            .iter()
            .filter(|s| s.count > 0)
            .filter_map(|s| match s.kind {
                SlotTarget::Inline(i) if self.types.get(i as usize).is_some_and(|n| n.size > 0) => {
                    Some(i as usize)
                }
                _ => None,
            })
    }

    /// Inline values nest, and no type can contain itself however indirectly (no Rust type
    /// does), or a walk guided by the graph would never end. Depth-first search over the
    /// `Inline` edges, iterative so a hostile table cannot exhaust the stack. Returns the types
    /// in post-order: each after every type it holds inline.
    fn check_inline_acyclic(&self) -> Result<Vec<usize>, TypeTableProblem> {
        const NEW: u8 = 0;
        const OPEN: u8 = 1;
        const DONE: u8 = 2;
        let inline_targets = |t: usize| {
            self.types[t]
                .slots
                .iter()
                .filter(|s| s.count > 0)
                .filter_map(|s| match s.kind {
                    SlotTarget::Inline(i) if (i as usize) < self.types.len() => Some(i as usize),
                    _ => None,
                })
        };
        let mut state = vec![NEW; self.types.len()];
        let mut order = Vec::with_capacity(self.types.len());
        for start in 0..self.types.len() {
            if state[start] != NEW {
                continue;
            }
            state[start] = OPEN;
            let mut path = vec![(start, 0usize)];
            while let Some((t, next)) = path.last_mut() {
                let t = *t;
                match inline_targets(t).nth(*next) {
                    Some(child) => {
                        *next += 1;
                        match state[child] {
                            OPEN => {
                                return Err(TypeTableProblem::InlineCycle {
                                    type_name: self.types[child].name.clone(),
                                })
                            }
                            NEW => {
                                state[child] = OPEN;
                                path.push((child, 0));
                            }
                            _ => {}
                        }
                    }
                    None => {
                        state[t] = DONE;
                        order.push(t);
                        path.pop();
                    }
                }
            }
        }
        Ok(order)
    }

    /// Reads a table; `None` if it is absent (all zero) or damaged. Never panics.
    pub(crate) fn decode(bytes: &[u8]) -> Option<TypeGraph> {
        if bytes.len() != TYPE_TABLE_SIZE as usize {
            return None;
        }
        let (body, sum) = bytes.split_at(bytes.len() - 8);
        let v1 = match &body[..8] {
            m if m == MAGIC => false,
            m if m == MAGIC_V1 => true,
            _ => return None,
        };
        if xxhash_rust::xxh3::xxh3_64(body).to_le_bytes() != sum {
            return None;
        }
        let mut r = super::Cursor::at(body, 8);
        let count = r.u32()?;
        let truncated = r.u32()? != 0;
        let mut types = Vec::new();
        for _ in 0..count {
            let fingerprint = r.u64()?;
            let size = r.u64()?;
            let align = if v1 { 0 } else { r.u64()? };
            let name = r.str()?;
            let fields = match if v1 { FIELDS_NOT_RECORDED } else { r.u16()? } {
                FIELDS_NOT_RECORDED => None,
                n => {
                    let mut fields = Vec::new();
                    for _ in 0..n {
                        fields.push(TypeField {
                            name: r.str()?,
                            type_name: r.str()?,
                            offset: r.u64()?,
                            size: r.u64()?,
                            fingerprint: r.u64()?,
                        });
                    }
                    Some(fields)
                }
            };
            let nslots = r.u16()?;
            let mut slots = Vec::new();
            for _ in 0..nslots {
                let (offset, count, stride) = (r.u64()?, r.u64()?, r.u64()?);
                let kind = r.u8()?;
                let target = r.u32()?;
                let kind = match kind {
                    1 => SlotTarget::Ptr(target),
                    2 => SlotTarget::Slice(target),
                    3 => SlotTarget::Inline(target),
                    _ => return None,
                };
                slots.push(Slot {
                    offset,
                    count,
                    stride,
                    kind,
                });
            }
            types.push(TypeNode {
                name,
                fingerprint,
                size,
                align,
                fields,
                slots,
            });
        }
        Some(TypeGraph { types, truncated })
    }
}

impl TypeNode {
    /// The node of a program type, its slots not yet filled in.
    fn of(info: &'static TypeInfo) -> TypeNode {
        TypeNode {
            name: display_name(info),
            fingerprint: info.fingerprint,
            size: info.size as u64,
            align: info.layout.align as u64,
            fields: Some(
                info.layout
                    .fields
                    .iter()
                    .map(|f| TypeField {
                        name: f.name.into(),
                        type_name: f.type_name.into(),
                        offset: f.offset as u64,
                        size: f.size as u64,
                        fingerprint: f.fingerprint,
                    })
                    .collect(),
            ),
            slots: Vec::new(),
        }
    }

    /// The node as a stored type description, for [`describe_difference`].
    fn as_stored(&self) -> StoredType {
        let fields = self.fields.as_deref().unwrap_or_default();
        StoredType {
            name: self.name.clone(),
            size: self.size,
            align: self.align,
            fingerprint: self.fingerprint,
            fields: fields
                .iter()
                .map(|f| StoredField {
                    name: f.name.clone(),
                    type_name: f.type_name.clone(),
                    offset: f.offset,
                    size: f.size,
                    fingerprint: f.fingerprint,
                })
                .collect(),
            truncated: self.fields.is_none(),
        }
    }
}

/// Appends `s` as a length byte and at most 255 bytes, cut at a character boundary.
fn push_str(out: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(255);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.push(end as u8);
    out.extend_from_slice(&s.as_bytes()[..end]);
}

/// A type's name for people: pointers name what they point at (`PPtr<Node>`, `PSlice<u8>`),
/// arrays their element and length.
fn display_name(info: &'static TypeInfo) -> String {
    match (info.name, info.pointers) {
        ("PPtr", [slot]) | ("PSlice", [slot]) => match slot.kind {
            SlotKind::Ptr(f) | SlotKind::Slice(f) => {
                format!("{}<{}>", info.name, display_name(f()))
            }
            SlotKind::Inline(_) => info.name.into(),
        },
        ("array", [slot]) => match slot.kind {
            SlotKind::Inline(f) => format!("[{}; {}]", display_name(f()), slot.count),
            _ => info.name.into(),
        },
        _ => info.name.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PPtr, PSlice, Persistent};

    #[derive(Persistent)]
    #[repr(C)]
    struct Node {
        value: u64,
        next: PPtr<Node>,
        items: PSlice<Item>,
    }

    #[derive(Persistent)]
    #[repr(C)]
    struct Item {
        owner: PPtr<Node>,
        n: [u32; 2],
    }

    #[derive(Persistent)]
    #[repr(C)]
    struct Root {
        count: u64,
        heads: [PPtr<Node>; 4],
    }

    #[derive(Persistent)]
    #[repr(C)]
    struct Wrap {
        p: PPtr<Node>,
    }

    #[derive(Persistent)]
    #[repr(C)]
    struct WrapWrap {
        w: Wrap,
        ws: [Wrap; 3],
    }

    #[derive(Persistent)]
    #[repr(C)]
    struct Nested {
        a: WrapWrap,
        many: [[WrapWrap; 2]; 5],
        items: PSlice<Item>,
        empty: [PPtr<Node>; 0],
    }

    /// Every table the library writes passes its own validation, however deeply values nest.
    #[test]
    fn graphs_of_real_types_are_valid() {
        for info in [<Root as Persistent>::INFO, <Nested as Persistent>::INFO] {
            let g = TypeGraph::of(info);
            assert_eq!(g.validate(), Ok(()), "{g:?}");
            assert_eq!(TypeGraph::decode(&g.encode()).unwrap().validate(), Ok(()));
        }
    }

    /// Types whose fields do not fit in the table are all kept, without their fields.
    #[test]
    fn a_table_too_small_for_the_fields_keeps_the_types() {
        let field = TypeField {
            name: "a_long_field_name".repeat(4),
            type_name: "SomeType".repeat(8),
            offset: 0,
            size: 8,
            fingerprint: 1,
        };
        let types: Vec<TypeNode> = (0..200)
            .map(|i| TypeNode {
                name: format!("Type{i}"),
                fingerprint: i,
                size: 8,
                align: 8,
                fields: Some(vec![field.clone(); 4]),
                slots: Vec::new(),
            })
            .collect();
        let g = TypeGraph {
            types,
            truncated: false,
        };
        let decoded = TypeGraph::decode(&g.encode()).unwrap();
        assert_eq!(decoded.types.len(), 200);
        assert!(!decoded.truncated);
        assert!(decoded.types.iter().all(|t| t.fields.is_none()));
    }

    /// A table in the format before fields were recorded reads with its fields not recorded.
    #[test]
    fn a_table_without_fields_decodes() {
        let mut body = Vec::new();
        body.extend_from_slice(MAGIC_V1);
        body.extend_from_slice(&1u32.to_le_bytes());
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(&77u64.to_le_bytes());
        body.extend_from_slice(&8u64.to_le_bytes());
        push_str(&mut body, "Root");
        body.extend_from_slice(&1u16.to_le_bytes());
        for v in [0u64, 1, 8] {
            body.extend_from_slice(&v.to_le_bytes());
        }
        body.push(1);
        body.extend_from_slice(&0u32.to_le_bytes());
        body.resize(TYPE_TABLE_SIZE as usize - 8, 0);
        let sum = xxhash_rust::xxh3::xxh3_64(&body);
        body.extend_from_slice(&sum.to_le_bytes());
        let g = TypeGraph::decode(&body).unwrap();
        assert_eq!(g.types.len(), 1);
        let root = &g.types[0];
        assert_eq!(
            (root.name.as_str(), root.fingerprint, root.size),
            ("Root", 77, 8)
        );
        assert_eq!(root.fields, None);
        assert_eq!(root.slots[0].kind, SlotTarget::Ptr(0));
        assert_eq!(g.validate(), Ok(()));
    }

    #[test]
    fn graph_of_recursive_types_round_trips() {
        let g = TypeGraph::of(<Root as Persistent>::INFO);
        let names: Vec<&str> = g.types.iter().map(|t| t.name.as_str()).collect();
        assert!(
            names.contains(&"Root") && names.contains(&"Node") && names.contains(&"Item"),
            "{names:?}"
        );
        assert_eq!(g.types[0].name, "Root");
        let decoded = TypeGraph::decode(&g.encode()).unwrap();
        assert_eq!(decoded, g);
        let mut damaged = g.encode();
        damaged[40] ^= 1;
        assert_eq!(TypeGraph::decode(&damaged), None);
        assert_eq!(TypeGraph::decode(&vec![0; TYPE_TABLE_SIZE as usize]), None);
    }
}

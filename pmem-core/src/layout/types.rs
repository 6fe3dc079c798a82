//! The type table: every type reachable from the root, with where it holds pointers, so that a
//! tool that does not know the program's types (`pmem check`, `pmem dump`) can still walk the
//! object graph and name what it finds.
//!
//! ```text
//! magic "PMEMTYPE" | count u32 | truncated u32 | types... | (zeros) | xxh3-64 of all before it
//! type  = fingerprint u64 | size u64 | name (len u8, bytes) | slot count u16 | slots
//! slot  = offset u64 | count u64 | stride u64 | kind u8 (1 ptr, 2 slice, 3 inline) | target u32
//! ```

use std::collections::HashMap;

use super::geometry::TYPE_TABLE_SIZE;
use crate::persistent::{SlotKind, TypeInfo};

const MAGIC: &[u8; 8] = b"PMEMTYPE";

/// A type of the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeNode {
    /// The type's name.
    pub name: String,
    /// Its layout fingerprint.
    pub fingerprint: u64,
    /// Its size in bytes.
    pub size: u64,
    /// Where it holds pointers.
    pub slots: Vec<Slot>,
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
        graph.types.push(TypeNode {
            name: display_name(root),
            fingerprint: root.fingerprint,
            size: root.size as u64,
            slots: Vec::new(),
        });
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
                    graph.types.push(TypeNode {
                        name: display_name(target),
                        fingerprint: target.fingerprint,
                        size: target.size as u64,
                        slots: Vec::new(),
                    });
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

    /// The table bytes, exactly `TYPE_TABLE_SIZE` long. Types that do not fit are left out and
    /// the table marked truncated.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let limit = TYPE_TABLE_SIZE as usize - 8;
        let mut out = Vec::with_capacity(TYPE_TABLE_SIZE as usize);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&[0u8; 8]); // count and truncated, patched below
        let mut count = 0u32;
        for t in &self.types {
            let mut entry = Vec::new();
            entry.extend_from_slice(&t.fingerprint.to_le_bytes());
            entry.extend_from_slice(&t.size.to_le_bytes());
            let name = &t.name.as_bytes()[..t.name.len().min(255)];
            entry.push(name.len() as u8);
            entry.extend_from_slice(name);
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
        out
    }

    /// The name of the type with this fingerprint: `[T]` for a slice of `T`, the fingerprint in
    /// hex for a type the graph does not hold.
    pub(crate) fn name_of(&self, fingerprint: u64) -> String {
        if let Some(t) = self.types.iter().find(|t| t.fingerprint == fingerprint) {
            return t.name.clone();
        }
        let slice_of = |t: &&TypeNode| {
            crate::pool::resolve::slice_fingerprint_of(t.fingerprint) == fingerprint
        };
        match self.types.iter().find(slice_of) {
            Some(t) => format!("[{}]", t.name),
            None => format!("type {fingerprint:#018x}"),
        }
    }

    /// Checks that every slot lies inside its type and names a type of the graph, so that a walk
    /// guided by the graph reads only inside the objects it visits. `Err` names the first slot
    /// that does not.
    pub(crate) fn validate(&self) -> Result<(), String> {
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
                if self.types.get(target as usize).is_none()
                    || !fits
                    || (s.count > 1 && s.stride < width)
                {
                    return Err(format!(
                        "type `{}` has a pointer slot at +{:#x} that does not fit it",
                        t.name, s.offset
                    ));
                }
            }
        }
        let order = self.check_inline_acyclic()?;
        self.check_walk_cost(&order)
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
    fn check_walk_cost(&self, order: &[usize]) -> Result<(), String> {
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
                return Err(format!(
                    "type `{}` ({} bytes) claims pointer slots that overlap: walking one value would visit {} pointers and inline values, more than its bytes could hold",
                    self.types[t].name,
                    self.types[t].size,
                    if steps[t] == u64::MAX { "over 2^64".to_string() } else { steps[t].to_string() },
                ));
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
                    SlotTarget::Inline(u) if self.types[u as usize].size == 0 => 0,
                    SlotTarget::Inline(u) => steps[u as usize].saturating_add(1),
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
                SlotTarget::Inline(i) if self.types[i as usize].size > 0 => Some(i as usize),
                _ => None,
            })
    }

    /// Inline values nest, and no type can contain itself however indirectly (no Rust type
    /// does), or a walk guided by the graph would never end. Depth-first search over the
    /// `Inline` edges, iterative so a hostile table cannot exhaust the stack. Returns the types
    /// in post-order: each after every type it holds inline.
    fn check_inline_acyclic(&self) -> Result<Vec<usize>, String> {
        const NEW: u8 = 0;
        const OPEN: u8 = 1;
        const DONE: u8 = 2;
        let inline_targets = |t: usize| {
            self.types[t]
                .slots
                .iter()
                .filter(|s| s.count > 0)
                .filter_map(|s| match s.kind {
                    SlotTarget::Inline(i) => Some(i as usize),
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
                                return Err(format!(
                                    "type `{}` contains itself inline",
                                    self.types[child].name
                                ))
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
        if &body[..8] != MAGIC || xxhash_rust::xxh3::xxh3_64(body).to_le_bytes() != sum {
            return None;
        }
        let mut r = super::Cursor::at(body, 8);
        let count = r.u32()?;
        let truncated = r.u32()? != 0;
        let mut types = Vec::new();
        for _ in 0..count {
            let fingerprint = r.u64()?;
            let size = r.u64()?;
            let name = r.str()?;
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
                slots,
            });
        }
        Some(TypeGraph { types, truncated })
    }
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

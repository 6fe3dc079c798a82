//! The pool header: identity, version, geometry and the root type, kept in two checksummed
//! copies so that a torn or damaged write of one is repaired from the other.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::geometry::HEADER_SIZE;
use super::Geometry;
use crate::error::{FieldDescription, TypeDifference};
use crate::persistent::TypeLayout;

/// The first eight bytes of every pool file.
pub(crate) const MAGIC: [u8; 8] = *b"PMEMPOOL";
/// Longest layout name, in bytes.
pub const MAX_LAYOUT_NAME: usize = 63;
const ROOT_TYPE_BYTES: usize = 3584;

/// Format feature flags (the header's three feature words).
pub(crate) mod features {
    /// `incompat`: the logs may hold `DATA` entries (a transaction's writes, logged with its
    /// commit record and applied after it; format 3.1). A reader that does not know them
    /// would take a committed transaction for a torn one, so it must refuse the pool. Set on
    /// every pool this version creates or opens for writing.
    pub(crate) const REDO_WRITES: u64 = 1;
    /// `incompat`: a commit record may hold the transaction's one write itself (flag
    /// `INLINE_WRITE`; format 3.2). A reader that does not know the flag would take such a
    /// record for a torn one. Set, like `REDO_WRITES`, on every pool opened for writing.
    pub(crate) const INLINE_WRITES: u64 = 2;
    /// Every `incompat` feature this version knows.
    pub(crate) const KNOWN_INCOMPAT: u64 = REDO_WRITES | INLINE_WRITES;
}

/// One copy of the header, exactly [`HEADER_SIZE`] bytes.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Clone)]
#[repr(C)]
pub(crate) struct Header {
    pub magic: [u8; 8],
    pub major: U16,
    pub minor: U16,
    pub header_size: U32,
    /// Features a reader must understand to open the pool at all.
    pub incompat_features: U64,
    /// Features a reader must understand to write the pool.
    pub ro_compat_features: U64,
    /// Features a reader may ignore.
    pub compat_features: U64,
    pub uuid: [u8; 16],
    pub created_unix_secs: U64,
    /// Bumped at every open.
    pub run_id: U64,
    pub pool_size: U64,
    pub log_offset: U64,
    pub log_slot_size: U64,
    pub log_slots: U64,
    pub root_offset: U64,
    pub root_size: U64,
    pub root_fingerprint: U64,
    pub chunk_table_offset: U64,
    pub heap_offset: U64,
    pub chunk_size: U64,
    pub chunk_count: U64,
    /// NUL-padded UTF-8.
    pub layout_name: [u8; 64],
    /// The root type's layout descriptor, encoded by [`encode_type`].
    pub root_type: [u8; ROOT_TYPE_BYTES],
    /// The secret that keys the log's entry checksums (see [`super::log`]): random, made at
    /// create, never changed.
    pub log_key: [u8; super::log::LOG_KEY_BYTES],
    pub reserved: [u8; 264],
    /// xxh3-64 of every byte before it.
    pub checksum: U64,
}

const _: () = assert!(core::mem::size_of::<Header>() == HEADER_SIZE as usize);

impl Header {
    pub(crate) fn compute_checksum(&self) -> u64 {
        let bytes = self.as_bytes();
        xxhash_rust::xxh3::xxh3_64(&bytes[..bytes.len() - 8])
    }

    pub(crate) fn seal(&mut self) {
        self.checksum = U64::new(self.compute_checksum());
    }

    pub(crate) fn checksum_ok(&self) -> bool {
        self.checksum.get() == self.compute_checksum()
    }

    /// Whether this copy is a pmem header whose checksum holds.
    pub(crate) fn is_valid(&self) -> bool {
        self.magic == MAGIC && self.checksum_ok()
    }

    /// The two header copies at the start of a pool; `None` if `bytes` is shorter than both.
    pub(crate) fn copies(bytes: &[u8]) -> Option<[Header; 2]> {
        let (a, rest) = Header::read_from_prefix(bytes).ok()?;
        let (b, _) = Header::read_from_prefix(rest).ok()?;
        Some([a, b])
    }

    /// The key of the pool's log entries.
    pub(crate) fn log_key(&self) -> super::log::LogKey {
        super::log::LogKey::from_bytes(self.log_key)
    }

    pub(crate) fn layout_name(&self) -> String {
        let end = self
            .layout_name
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.layout_name.len());
        String::from_utf8_lossy(&self.layout_name[..end]).into_owned()
    }

    /// The geometry the header records, in the form [`Geometry::compute`] returns.
    pub(crate) fn geometry(&self) -> Geometry {
        Geometry {
            pool_size: self.pool_size.get(),
            root_offset: self.root_offset.get(),
            root_size: self.root_size.get(),
            chunk_table_offset: self.chunk_table_offset.get(),
            heap_offset: self.heap_offset.get(),
            chunk_count: self.chunk_count.get(),
            bitmap_table_offset: super::geometry::bitmap_table_offset(
                self.chunk_table_offset.get(),
                self.chunk_count.get(),
            ),
        }
    }

    /// Whether every layout field matches what this library computes for the recorded sizes:
    /// the header cannot describe regions the library would not have made.
    pub(crate) fn geometry_is_canonical(&self) -> bool {
        Geometry::compute(self.pool_size.get(), self.root_size.get()) == Some(self.geometry())
            && self.log_offset.get() == super::geometry::LOG_OFFSET
            && self.log_slot_size.get() == super::log::LOG_SLOT_SIZE
            && self.log_slots.get() == super::geometry::LOG_SLOTS
            && self.chunk_size.get() == super::heap::CHUNK_SIZE
    }
}

/// A root type description as stored in a pool: enough to name the first difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredType {
    pub name: String,
    pub size: u64,
    pub align: u64,
    pub fingerprint: u64,
    pub fields: Vec<StoredField>,
    /// Some fields did not fit in the header and are missing from `fields`.
    pub truncated: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredField {
    pub name: String,
    pub type_name: String,
    pub offset: u64,
    pub size: u64,
    pub fingerprint: u64,
}

/// Writes `layout` (with `fingerprint`) into the header's root type area. Names longer than 255
/// bytes are cut; fields that do not fit are left out and the description marked truncated.
pub(crate) fn encode_type(layout: &TypeLayout, fingerprint: u64) -> [u8; ROOT_TYPE_BYTES] {
    let mut out = [0u8; ROOT_TYPE_BYTES];
    let mut w = Writer {
        buf: &mut out,
        pos: 0,
    };
    w.str(layout.name);
    w.u64(layout.size as u64);
    w.u64(layout.align as u64);
    w.u64(fingerprint);
    let count_at = w.pos;
    w.u64(0); // field count, patched below
    w.u64(0); // truncated flag, patched below
    let mut written = 0u64;
    for f in layout.fields {
        let need = 2 + f.name.len().min(255) + f.type_name.len().min(255) + 24;
        if w.pos + need > ROOT_TYPE_BYTES {
            break;
        }
        w.str(f.name);
        w.str(f.type_name);
        w.u64(f.offset as u64);
        w.u64(f.size as u64);
        w.u64(f.fingerprint);
        written += 1;
    }
    let truncated = (written as usize) < layout.fields.len();
    out[count_at..count_at + 8].copy_from_slice(&written.to_le_bytes());
    out[count_at + 8..count_at + 16].copy_from_slice(&(truncated as u64).to_le_bytes());
    out
}

/// Reads what [`encode_type`] wrote. Returns `None` for bytes it could not have written; never
/// panics, whatever the bytes.
pub(crate) fn decode_type(bytes: &[u8; ROOT_TYPE_BYTES]) -> Option<StoredType> {
    let mut r = super::Cursor::at(bytes, 0);
    let name = r.str()?;
    let size = r.u64()?;
    let align = r.u64()?;
    let fingerprint = r.u64()?;
    let count = r.u64()?;
    let truncated = r.u64()? != 0;
    let mut fields = Vec::new();
    for _ in 0..count.min(ROOT_TYPE_BYTES as u64) {
        fields.push(StoredField {
            name: r.str()?,
            type_name: r.str()?,
            offset: r.u64()?,
            size: r.u64()?,
            fingerprint: r.u64()?,
        });
    }
    Some(StoredType {
        name,
        size,
        align,
        fingerprint,
        fields,
        truncated,
    })
}

struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn u64(&mut self, v: u64) {
        self.buf[self.pos..self.pos + 8].copy_from_slice(&v.to_le_bytes());
        self.pos += 8;
    }
    fn str(&mut self, s: &str) {
        let mut end = s.len().min(255);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.buf[self.pos] = end as u8;
        self.buf[self.pos + 1..self.pos + 1 + end].copy_from_slice(&s.as_bytes()[..end]);
        self.pos += 1 + end;
    }
}

/// Describes the first difference between the program's root type and the stored one.
pub(crate) fn describe_difference(program: &TypeLayout, stored: &StoredType) -> TypeDifference {
    if program.name != stored.name {
        return TypeDifference::Name {
            program: program.name.to_string(),
            pool: stored.name.clone(),
        };
    }
    let program_field = |pf: &crate::persistent::FieldLayout| FieldDescription {
        name: pf.name.to_string(),
        type_name: pf.type_name.to_string(),
        offset: pf.offset as u64,
        size: pf.size as u64,
    };
    let stored_field = |sf: &StoredField| FieldDescription {
        name: sf.name.clone(),
        type_name: sf.type_name.clone(),
        offset: sf.offset,
        size: sf.size,
    };
    for (index, sf) in stored.fields.iter().enumerate() {
        let Some(pf) = program.fields.get(index) else {
            return TypeDifference::FieldOnlyInPool {
                index,
                field: stored_field(sf),
            };
        };
        if pf.name != sf.name {
            return TypeDifference::FieldName {
                index,
                program: pf.name.to_string(),
                pool: sf.name.clone(),
            };
        }
        if pf.offset as u64 != sf.offset
            || pf.size as u64 != sf.size
            || pf.fingerprint != sf.fingerprint
        {
            return TypeDifference::FieldLayout {
                index,
                program: program_field(pf),
                pool: stored_field(sf),
            };
        }
    }
    let index = stored.fields.len();
    if let Some(pf) = program.fields.get(index) {
        if !stored.truncated {
            return TypeDifference::FieldOnlyInProgram {
                index,
                field: program_field(pf),
            };
        }
    }
    if program.size as u64 != stored.size || program.align as u64 != stored.align {
        return TypeDifference::SizeOrAlignment {
            program: (program.size as u64, program.align as u64),
            pool: (stored.size, stored.align),
        };
    }
    TypeDifference::NestedLayout
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persistent::FieldLayout;

    const FIELDS: &[FieldLayout] = &[
        FieldLayout {
            name: "count",
            type_name: "u64",
            offset: 0,
            size: 8,
            fingerprint: 1,
        },
        FieldLayout {
            name: "head",
            type_name: "PPtr<Node>",
            offset: 8,
            size: 8,
            fingerprint: 2,
        },
    ];
    const ROOT: TypeLayout = TypeLayout {
        name: "Root",
        size: 16,
        align: 8,
        fields: FIELDS,
    };

    #[test]
    fn type_round_trips() {
        let stored = decode_type(&encode_type(&ROOT, 99)).unwrap();
        assert_eq!(stored.name, "Root");
        assert_eq!(stored.fingerprint, 99);
        assert_eq!(stored.fields.len(), 2);
        assert_eq!(stored.fields[1].type_name, "PPtr<Node>");
        assert!(!stored.truncated);
    }

    #[test]
    fn difference_names_the_field() {
        let stored = decode_type(&encode_type(&ROOT, 99)).unwrap();
        const CHANGED: &[FieldLayout] = &[
            FIELDS[0],
            FieldLayout {
                name: "head",
                type_name: "u32",
                offset: 8,
                size: 4,
                fingerprint: 3,
            },
        ];
        let program = TypeLayout {
            fields: CHANGED,
            ..ROOT
        };
        let d = describe_difference(&program, &stored).to_string();
        assert!(
            d.contains("`head`") && d.contains("u32") && d.contains("PPtr<Node>"),
            "{d}"
        );
    }

    #[test]
    fn decoding_garbage_does_not_panic() {
        let mut bytes = [0xffu8; ROOT_TYPE_BYTES];
        let _ = decode_type(&bytes);
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (i * 7 % 251) as u8;
        }
        let _ = decode_type(&bytes);
    }
}

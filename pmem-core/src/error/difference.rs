//! How a program's type differs from the type a pool recorded at its place.

use std::fmt;

/// The first difference found between a type of the program and the type the pool recorded for
/// it. Carried by [`Error::RootTypeMismatch`](crate::Error::RootTypeMismatch) and
/// [`Error::TypeMismatch`](crate::Error::TypeMismatch); its `Display` says it for people.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypeDifference {
    /// The type has another name.
    Name {
        /// The name in the program.
        program: String,
        /// The name in the pool.
        pool: String,
    },
    /// Field `index` of the pool's type has no counterpart in the program's.
    FieldOnlyInPool {
        /// The field's position.
        index: usize,
        /// The field as the pool records it.
        field: FieldDescription,
    },
    /// Field `index` of the program's type has no counterpart in the pool's.
    FieldOnlyInProgram {
        /// The field's position.
        index: usize,
        /// The field as the program declares it.
        field: FieldDescription,
    },
    /// Field `index` has another name.
    FieldName {
        /// The field's position.
        index: usize,
        /// Its name in the program.
        program: String,
        /// Its name in the pool.
        pool: String,
    },
    /// Field `index` has another type, offset or size.
    FieldLayout {
        /// The field's position.
        index: usize,
        /// The field as the program declares it.
        program: FieldDescription,
        /// The field as the pool records it.
        pool: FieldDescription,
    },
    /// The type's size or alignment differs.
    SizeOrAlignment {
        /// `(size, alignment)` in the program.
        program: (u64, u64),
        /// `(size, alignment)` in the pool.
        pool: (u64, u64),
    },
    /// Every field the pool records matches, but a field's type changed its own layout.
    NestedLayout,
    /// The pool has no root type yet, and its root area (`room` bytes, in 4 KiB pages) does not
    /// fit a root of `needed` bytes the way create would have made it.
    RootRoom {
        /// Bytes of the pool's root area.
        room: u64,
        /// Bytes the program's root type needs.
        needed: u64,
    },
    /// The pool's description of the type cannot be read.
    Unreadable,
}

/// One field of a type, as a program declares it or a pool records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    /// The field's name.
    pub name: String,
    /// Its type's name.
    pub type_name: String,
    /// Its offset in the type, in bytes.
    pub offset: u64,
    /// Its size in bytes.
    pub size: u64,
}

impl fmt::Display for TypeDifference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TypeDifference::Name { program, pool } => write!(
                f,
                "the type is named `{program}` in the program but `{pool}` in the pool"
            ),
            TypeDifference::FieldOnlyInPool { field, .. } => write!(
                f,
                "field `{}` ({}) at offset {} is in the pool but not in the program",
                field.name, field.type_name, field.offset
            ),
            TypeDifference::FieldOnlyInProgram { field, .. } => write!(
                f,
                "field `{}` ({}) at offset {} is in the program but not in the pool",
                field.name, field.type_name, field.offset
            ),
            TypeDifference::FieldName {
                index,
                program,
                pool,
            } => write!(
                f,
                "field {index} is `{program}` in the program but `{pool}` in the pool"
            ),
            TypeDifference::FieldLayout { program, pool, .. } => write!(
                f,
                "field `{}` is `{}` at offset {} ({} bytes) in the program but `{}` at offset {} ({} bytes) in the pool",
                program.name,
                program.type_name,
                program.offset,
                program.size,
                pool.type_name,
                pool.offset,
                pool.size
            ),
            TypeDifference::SizeOrAlignment { program, pool } => write!(
                f,
                "size/alignment is {}/{} in the program but {}/{} in the pool",
                program.0, program.1, pool.0, pool.1
            ),
            TypeDifference::NestedLayout => {
                f.write_str("the layout fingerprints differ (a field's type changed its own layout)")
            }
            TypeDifference::RootRoom { room, needed } => write!(
                f,
                "the pool was created with {room} bytes of room for its root and the root type needs {needed} (create it with a root size in the same 4 KiB page count)"
            ),
            TypeDifference::Unreadable => f.write_str("the stored type description is unreadable"),
        }
    }
}

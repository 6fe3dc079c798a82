//! What `#[derive(Persistent)]` generates: the constants (layout descriptors, type ids and
//! fingerprints), and write handles that reach the right bytes in a pool. The handles' shape
//! (names, types, visibility) is checked by the `ui/pass` cases of `compile_fail.rs`.

#![allow(missing_debug_implementations, dead_code)]

use core::mem::{align_of, size_of};

use pmem_core::{Edit, FieldLayout, PMut, PPtr, PSlice, Persistent};

#[derive(Persistent)]
#[repr(C)]
pub struct Root {
    pub count: u64,
    head: PPtr<Node>,
    name: [u8; 16],
    tail: pmem_core::PPtr<Node>,
}

#[derive(Persistent)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

#[derive(Persistent)]
#[repr(C)]
struct Tree {
    left: PPtr<Self>,
    right: PPtr<Self>,
}

#[derive(Persistent)]
#[repr(C)]
struct GenericNode<T> {
    next: PPtr<GenericNode<T>>,
    values: [T; 2],
}

#[derive(Persistent)]
#[repr(C)]
struct Buf<const N: usize> {
    bytes: [u8; N],
}

#[derive(Persistent)]
#[repr(C)]
struct Pair(u32, u16, u16);

#[derive(Persistent)]
#[repr(C)]
struct Outer {
    inner: Pair,
    items: PSlice<u64>,
}

#[test]
fn layout_describes_every_field() {
    let layout = Root::LAYOUT;
    assert_eq!(layout.name, "Root");
    assert_eq!(layout.size, size_of::<Root>());
    assert_eq!(layout.size, 40);
    assert_eq!(layout.align, align_of::<Root>());
    assert_eq!(
        layout.fields,
        &[
            FieldLayout {
                name: "count",
                type_name: "u64",
                offset: 0,
                size: 8,
                fingerprint: u64::FINGERPRINT,
            },
            FieldLayout {
                name: "head",
                type_name: "PPtr<Node>",
                offset: 8,
                size: 8,
                fingerprint: PPtr::<Node>::FINGERPRINT,
            },
            FieldLayout {
                name: "name",
                type_name: "[u8; 16]",
                offset: 16,
                size: 16,
                fingerprint: <[u8; 16]>::FINGERPRINT,
            },
            FieldLayout {
                name: "tail",
                type_name: "pmem_core::PPtr<Node>",
                offset: 32,
                size: 8,
                fingerprint: PPtr::<Node>::FINGERPRINT,
            },
        ]
    );
}

#[test]
fn tuple_and_nested_layouts() {
    let names: Vec<_> = Pair::LAYOUT.fields.iter().map(|f| f.name).collect();
    assert_eq!(names, ["0", "1", "2"]);
    let offsets: Vec<_> = Pair::LAYOUT.fields.iter().map(|f| f.offset).collect();
    assert_eq!(offsets, [0, 4, 6]);

    let inner = &Outer::LAYOUT.fields[0];
    assert_eq!((inner.name, inner.type_name), ("inner", "Pair"));
    assert_eq!(inner.fingerprint, Pair::FINGERPRINT);
    assert_eq!(Outer::LAYOUT.fields[1].type_name, "PSlice<u64>");
    assert_eq!(Outer::LAYOUT.fields[1].offset, 8);
}

#[test]
fn self_in_a_field_type_is_the_struct() {
    let fields = Tree::LAYOUT.fields;
    assert_eq!(fields[0].type_name, "PPtr<Self>");
    assert_eq!(fields[0].fingerprint, PPtr::<Tree>::FINGERPRINT);
    assert_eq!(fields[1].offset, 8);
}

#[test]
fn fingerprints_are_compile_time_constants() {
    // Usable in `const` items: evaluated by the compiler.
    const ROOT: u64 = Root::FINGERPRINT;
    const NODE: u64 = Node::FINGERPRINT;
    assert_ne!(ROOT, NODE);
}

#[test]
fn recursive_fingerprint_uses_the_shallow_identity() {
    // `Node` contains `PPtr<Node>`, whose fingerprint is built from `Node::TYPE_ID`.
    assert_eq!(Node::TYPE_ID, pmem_core::fingerprint::type_id("Node", &[]));
    assert_eq!(
        Node::LAYOUT.fields[1].fingerprint,
        PPtr::<Node>::FINGERPRINT
    );
    assert_ne!(Node::FINGERPRINT, Node::TYPE_ID);
}

/// Variations on one struct, each in its own module so the names can repeat.
mod variants {
    pub mod original {
        #[derive(pmem_core::Persistent)]
        #[repr(C)]
        pub struct Record {
            pub id: u64,
            pub size: u32,
            pub flags: u32,
        }
    }

    /// The same definition as `original`, in another module.
    pub mod same {
        #[derive(pmem_core::Persistent)]
        #[repr(C)]
        pub struct Record {
            pub id: u64,
            pub size: u32,
            pub flags: u32,
        }
    }

    pub mod field_renamed {
        #[derive(pmem_core::Persistent)]
        #[repr(C)]
        pub struct Record {
            pub id: u64,
            pub len: u32,
            pub flags: u32,
        }
    }

    pub mod field_retyped {
        #[derive(pmem_core::Persistent)]
        #[repr(C)]
        pub struct Record {
            pub id: u64,
            pub size: i32,
            pub flags: u32,
        }
    }

    pub mod fields_reordered {
        #[derive(pmem_core::Persistent)]
        #[repr(C)]
        pub struct Record {
            pub id: u64,
            pub flags: u32,
            pub size: u32,
        }
    }

    pub mod struct_renamed {
        #[derive(pmem_core::Persistent)]
        #[repr(C)]
        pub struct Entry {
            pub id: u64,
            pub size: u32,
            pub flags: u32,
        }
    }

    pub mod aligned {
        #[derive(pmem_core::Persistent)]
        #[repr(C, align(16))]
        pub struct Record {
            pub id: u64,
            pub size: u32,
            pub flags: u32,
        }
    }
}

#[test]
fn identical_definitions_have_equal_fingerprints() {
    use variants::*;
    assert_eq!(original::Record::FINGERPRINT, same::Record::FINGERPRINT);
    assert_eq!(original::Record::TYPE_ID, same::Record::TYPE_ID);
}

#[test]
fn any_change_to_the_definition_changes_the_fingerprint() {
    use variants::*;
    let original = original::Record::FINGERPRINT;
    for (change, fingerprint) in [
        ("field renamed", field_renamed::Record::FINGERPRINT),
        ("field retyped", field_retyped::Record::FINGERPRINT),
        ("fields reordered", fields_reordered::Record::FINGERPRINT),
        ("struct renamed", struct_renamed::Entry::FINGERPRINT),
        ("alignment raised", aligned::Record::FINGERPRINT),
    ] {
        assert_ne!(original, fingerprint, "{change}: fingerprint unchanged");
    }
}

#[test]
fn generic_instances_differ() {
    assert_ne!(GenericNode::<u32>::TYPE_ID, GenericNode::<u64>::TYPE_ID);
    assert_ne!(
        GenericNode::<u32>::FINGERPRINT,
        GenericNode::<u64>::FINGERPRINT
    );
    // Same size and layout, different type argument.
    assert_ne!(
        GenericNode::<u64>::FINGERPRINT,
        GenericNode::<i64>::FINGERPRINT
    );
    assert_eq!(
        GenericNode::<u64>::TYPE_ID,
        pmem_core::fingerprint::type_id("GenericNode", &[u64::TYPE_ID])
    );
    assert_eq!(GenericNode::<u32>::LAYOUT.fields[1].type_name, "[T; 2]");
    assert_eq!(GenericNode::<u32>::LAYOUT.fields[1].size, 8);
    assert_eq!(GenericNode::<u64>::LAYOUT.fields[1].size, 16);
}

#[test]
fn const_parameters_are_part_of_the_identity() {
    assert_ne!(Buf::<8>::TYPE_ID, Buf::<16>::TYPE_ID);
    assert_eq!(
        Buf::<8>::TYPE_ID,
        pmem_core::fingerprint::type_id("Buf", &[8])
    );
    assert_eq!(Buf::<24>::LAYOUT.size, 24);
}

#[test]
fn fingerprint_is_pinned() {
    // Pools store this value in their header and in every object header, and refuse to open
    // when it differs. If this assertion fails, every existing pool with this type becomes
    // unreadable: a change to the fingerprint scheme must be deliberate, and come with a
    // format version bump.
    //
    // The value was computed once, and agrees with an independent implementation of the scheme
    // described in `pmem_core::fingerprint` (FNV-1a over the length-prefixed little-endian
    // encoding of "layout", the type id of `Record`, size 16, align 8, and for each field its
    // name, offset and the field type's fingerprint).
    assert_eq!(
        variants::original::Record::FINGERPRINT,
        0x9f85_beb9_448d_433a
    );
}

#[test]
fn persistent_pointers_are_eight_bytes() {
    assert_eq!(size_of::<PPtr<Root>>(), 8);
    assert_eq!(size_of::<PPtr<GenericNode<u8>>>(), 8);
    assert_eq!(align_of::<PPtr<Root>>(), 8);
}

#[test]
fn the_write_handle_is_the_generated_type() {
    fn handle<T: Edit>(inner: PMut<'_, T>) -> T::Mut<'_> {
        inner.into_handle()
    }
    // These only compile if `Edit::Mut` is the generated handle.
    let _: fn(PMut<'_, Root>) -> RootMut<'_> = handle::<Root>;
    let _: fn(PMut<'_, GenericNode<u32>>) -> GenericNodeMut<'_, u32> = handle::<GenericNode<u32>>;
    let _: fn(PMut<'_, Buf<4>>) -> BufMut<'_, 4> = handle::<Buf<4>>;
}

/// The generated handles write the right bytes: each setter and field handle reaches its own
/// field (and only it), in nested structs and arrays, and an aborted transaction restores them.
mod handles {
    use pmem_core::{PPtr, Persistent, Pool};

    #[derive(Persistent, Debug, Clone, Copy, PartialEq)]
    #[repr(C)]
    struct Point {
        x: u32,
        y: u32,
    }

    #[derive(Persistent, Debug, Clone, Copy, PartialEq)]
    #[repr(C)]
    struct Pair(u32, u32);

    #[derive(Persistent)]
    #[repr(C)]
    struct Root {
        count: u64,
        origin: Point,
        points: [Point; 3],
        bytes: [u8; 8],
        pair: Pair,
        next: PPtr<Root>,
    }

    fn pool() -> Pool<Root> {
        Pool::<Root>::builder()
            .create_simulated(8 << 20)
            .expect("create a simulated pool")
    }

    #[test]
    fn setters_write_their_own_field() {
        let pool = pool();
        pool.transaction(|tx| -> pmem_core::Result<_> {
            let mut root = tx.root_mut();
            root.set_count(7)?;
            root.origin_mut().set_y(2)?;
            root.points_mut().at(1).set_x(3)?;
            root.points_mut().set_at(2, Point { x: 4, y: 5 })?;
            root.bytes_mut().set_at(3, 9)?;
            root.bytes_mut().at(7).set(1)?;
            root.pair_mut().set_1(6)?;
            root.set_next(PPtr::from_offset(64))?;
            Ok(())
        })
        .unwrap();
        pool.read(|r| {
            let root = r.root();
            assert_eq!(root.count, 7);
            assert_eq!(root.origin, Point { x: 0, y: 2 });
            assert_eq!(
                root.points,
                [
                    Point { x: 0, y: 0 },
                    Point { x: 3, y: 0 },
                    Point { x: 4, y: 5 }
                ]
            );
            assert_eq!(root.bytes, [0, 0, 0, 9, 0, 0, 0, 1]);
            assert_eq!(root.pair, Pair(0, 6));
            assert_eq!(root.next.offset(), 64);
        })
        .unwrap();
    }

    #[test]
    fn whole_value_access_through_the_handle() {
        let pool = pool();
        pool.transaction(|tx| -> pmem_core::Result<_> {
            let mut root = tx.root_mut();
            root.set_count(1)?;
            assert_eq!(root.get().count, 1, "reads see this transaction's writes");
            let whole = root.get_mut()?;
            whole.count += 1;
            whole.pair = Pair(8, 9);
            Ok(())
        })
        .unwrap();
        pool.read(|r| {
            assert_eq!(r.root().count, 2);
            assert_eq!(r.root().pair, Pair(8, 9));
        })
        .unwrap();
    }

    #[test]
    fn an_aborted_transaction_restores_what_setters_wrote() {
        let pool = pool();
        pool.transaction(|tx| tx.root_mut().set_count(10)).unwrap();
        let result: pmem_core::Result<()> = pool.transaction(|tx| {
            let mut root = tx.root_mut();
            root.set_count(11)?;
            root.origin_mut().set_x(12)?;
            Err(tx.abort())
        });
        assert!(result.is_err());
        pool.read(|r| {
            assert_eq!(r.root().count, 10);
            assert_eq!(r.root().origin, Point { x: 0, y: 0 });
        })
        .unwrap();
    }
}

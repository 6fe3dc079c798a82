//! Names the checks must not trip over: raw identifiers, fields named like the handle's methods
//! without colliding, and a user type named like a standard one, reached by a longer path.
use pmem_core::Persistent;

mod grid {
    use pmem_core::Persistent;

    #[derive(Persistent)]
    #[repr(C)]
    pub struct Cell<T> {
        pub value: T,
    }

    #[derive(Persistent)]
    #[repr(C)]
    pub struct Box {
        pub width: u32,
        pub height: u32,
    }
}

#[derive(Persistent)]
#[repr(C)]
struct r#Root {
    r#type: u64,
    set: u64,
    offset: u64,
    inner: u64,
    cell: grid::Cell<u64>,
    bounds: grid::Box,
}

fn write(mut root: RootMut<'_>) -> pmem_core::Result<()> {
    root.set_type(1)?;
    root.set_set(2)?;
    root.set_mut().set(3)?;
    root.set_offset(4)?;
    root.set_inner(5)?;
    root.cell_mut().set_value(6)?;
    root.bounds_mut().set_width(7)
}

mod restricted {
    use pmem_core::Persistent;

    // `pub(super)` must mean the same on the generated methods as on the fields.
    #[derive(Persistent)]
    #[repr(C)]
    pub(super) struct Counter {
        pub(super) hits: u64,
    }
}

fn bump(mut counter: restricted::CounterMut<'_>) -> pmem_core::Result<()> {
    counter.set_hits(1)
}

fn main() {
    // A struct local to a function.
    #[derive(Persistent)]
    #[repr(C)]
    struct Local {
        x: u32,
    }
    let _ = |mut l: LocalMut<'_>| l.set_x(1);
    let _ = bump;

    assert_eq!(Root::LAYOUT.name, "Root");
    assert_eq!(Root::LAYOUT.fields[0].name, "type");
    let _ = write;
}

//! `#[persistent(crate = "..")]` for crates that reach pmem-core through a re-export.
mod reexport {
    pub use pmem_core as pmem;
}

use reexport::pmem::Persistent;

#[derive(Persistent)]
#[repr(C)]
#[persistent(crate = "reexport::pmem")]
struct Root {
    count: u64,
}

fn main() {
    assert_eq!(Root::LAYOUT.fields[0].name, "count");
    let _ = |mut r: RootMut<'_>| r.set_count(1);
}

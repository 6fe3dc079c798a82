use pmem_core::Persistent;

// Every problem is reported in one build, not one per edit.
#[derive(Persistent)]
struct Root<'a> {
    flag: bool,
    name: String,
    parent: &'a Root<'a>,
    len: usize,
}

fn main() {}

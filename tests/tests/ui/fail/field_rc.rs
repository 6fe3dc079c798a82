use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
struct Bad {
    field: std::rc::Rc<u64>,
}

fn main() {}

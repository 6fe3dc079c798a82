//! A setter has its field's visibility.
mod store {
    use pmem_core::Persistent;

    #[derive(Persistent)]
    #[repr(C)]
    pub struct Root {
        pub count: u64,
        secret: u64,
    }
}

fn write(mut root: store::RootMut<'_>) -> pmem_core::Result<()> {
    root.set_count(1)?;
    root.set_secret(2)
}

fn main() {
    let _ = write;
}

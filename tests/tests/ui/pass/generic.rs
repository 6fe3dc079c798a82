//! Generic structs: type and const parameters get `Persistent` bounds and feed the type id.
use pmem_core::{PPtr, PSlice, Persistent};

#[derive(Persistent)]
#[repr(C)]
pub struct Buf<T, const N: usize> {
    len: u64,
    items: [T; N],
}

#[derive(Persistent)]
#[repr(C)]
pub struct Entry<K, V = u64>
where
    K: Copy,
{
    key: K,
    value: V,
    more: PSlice<V>,
    next: PPtr<Entry<K, V>>,
}

fn push<T: Persistent, const N: usize>(
    mut buf: BufMut<'_, T, N>,
    item: T,
) -> pmem_core::Result<()> {
    let len = buf.get().len;
    buf.items_mut().set_at(len as usize, item)?;
    buf.set_len(len + 1)
}

fn main() {
    assert_ne!(Buf::<u64, 4>::TYPE_ID, Buf::<u64, 5>::TYPE_ID);
    assert_ne!(Buf::<u64, 4>::TYPE_ID, Buf::<u32, 4>::TYPE_ID);
    assert_eq!(Entry::<u64>::LAYOUT.fields[1].type_name, "V");
    let _ = push::<u64, 4>;
    let _ = |mut e: EntryMut<'_, u64>| e.set_value(1);
}

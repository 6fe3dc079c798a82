use pmem_core::{PPtr, Persistent};

#[derive(Persistent)]
#[repr(transparent)]
struct Meters(u64);

#[derive(Persistent)]
#[repr(transparent)]
struct Handle<T> {
    ptr: PPtr<T>,
}

fn main() {
    assert_eq!(Meters::LAYOUT.size, 8);
    assert_eq!(Handle::<u64>::LAYOUT.size, 8);
    let _ = |mut m: MetersMut<'_>| m.set_0(3);
    let _ = |mut h: HandleMut<'_, Meters>| h.set_ptr(PPtr::null());
}

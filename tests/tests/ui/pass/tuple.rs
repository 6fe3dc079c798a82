use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
struct Pair(u64, u32, u32);

#[derive(Persistent)]
#[repr(C)]
struct Unit;

#[derive(Persistent)]
#[repr(C)]
struct Empty {}

fn write(mut pair: PairMut<'_>) -> pmem_core::Result<()> {
    pair.set_0(1)?;
    pair._1_mut().set(2)?;
    pair.set_2(3)
}

fn main() {
    assert_eq!(Pair::LAYOUT.fields[2].name, "2");
    assert_eq!(Pair::LAYOUT.fields[2].offset, 12);
    assert_eq!(Unit::LAYOUT.size, 0);
    assert_eq!(Empty::LAYOUT.fields.len(), 0);
    let _ = write;
    let _ = |u: UnitMut<'_>, e: EmptyMut<'_>| (u.offset(), e.offset());
}

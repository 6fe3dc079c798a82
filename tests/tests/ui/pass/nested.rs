//! Field handles chain into nested structs and arrays.
use pmem_core::Persistent;

#[derive(Persistent)]
#[repr(C)]
struct Point {
    x: u32,
    y: u32,
}

#[derive(Persistent)]
#[repr(C)]
struct Root {
    origin: Point,
    points: [Point; 4],
    buf: [u8; 16],
    grid: [[u16; 4]; 4],
}

fn write(mut root: RootMut<'_>) -> pmem_core::Result<()> {
    root.origin_mut().set_x(5)?;
    root.origin_mut().y_mut().set(6)?;
    root.points_mut().at(1).set_y(7)?;
    root.buf_mut().set_at(3, 7)?;
    root.buf_mut().at(3).set(7)?;
    root.grid_mut().at(2).set_at(1, 9)?;
    let whole: &mut Root = root.get_mut()?;
    whole.origin.x += 1;
    Ok(())
}

fn main() {
    assert_eq!(Root::LAYOUT.fields[1].type_name, "[Point; 4]");
    assert_eq!(Root::LAYOUT.fields[3].type_name, "[[u16; 4]; 4]");
    let _ = write;
}

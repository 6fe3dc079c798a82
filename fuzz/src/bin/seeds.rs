//! Writes the seed corpus: valid pools and interrupted-transaction images of the hostile-file
//! schema, small (384 KiB) so that fuzzing is fast, into `corpus/<target>/` for every target.

use std::path::PathBuf;

fn main() {
    let out = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/corpus")));
    let dir = tempfile_dir();
    let seeds = pmem_tests::hostile::seeds::build(&dir, true);
    for target in ["open", "check", "inspect"] {
        let t = out.join(target);
        std::fs::create_dir_all(&t).expect("create the corpus directory");
        for s in &seeds {
            std::fs::write(t.join(format!("seed-{}", s.name)), &s.bytes).expect("write a seed");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("{} seeds written to {}", seeds.len(), out.display());
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pmem-fuzz-seeds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

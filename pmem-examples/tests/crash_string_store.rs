//! Crash test of the string store: at every fence of a sequence of writes (growing, shrinking
//! and empty strings), the recovered pool holds the last string written or the one being
//! written, never a mix, and exactly one text object (none for the empty string).

use std::sync::{Arc, Mutex};

use pmem_core::crash::CrashTest;
use pmem_examples::string_store::{self, StringRoot};

/// The last string written, and the one being written.
type Expected = (Option<Vec<u8>>, Option<Vec<u8>>);

#[test]
fn every_crash_leaves_the_old_or_the_new_string() {
    let texts: Vec<Vec<u8>> = (0..60usize)
        .map(|i| match i % 7 {
            0 => Vec::new(),
            3 => vec![b'a' + (i % 26) as u8; 3000 + i],
            _ => format!("string number {i} {}", "-".repeat(i)).into_bytes(),
        })
        .collect();
    let expected: Arc<Mutex<Expected>> = Arc::default();
    let seen = Arc::clone(&expected);
    let report = CrashTest::new(1 << 20).run::<StringRoot>(
        move |pool| {
            for text in &texts {
                expected.lock().unwrap().1 = Some(text.clone());
                string_store::write(pool, text)?;
                *expected.lock().unwrap() = (Some(text.clone()), None);
            }
            Ok(())
        },
        move |pool, _| {
            let found = string_store::read(pool).map_err(|e| e.to_string())?;
            let (done, doing) = seen.lock().unwrap().clone();
            if found != done && (doing.is_none() || found != doing) {
                return Err(format!(
                    "found {:?}, expected {:?} or {:?}",
                    found.as_deref().map(String::from_utf8_lossy),
                    done.as_deref().map(String::from_utf8_lossy),
                    doing.as_deref().map(String::from_utf8_lossy)
                ));
            }
            let report = pmem_core::check::check(pool);
            let objects = u64::from(found.is_some_and(|t| !t.is_empty()));
            if !report.is_healthy()
                || !report.unreachable.is_empty()
                || report.live_objects != objects
            {
                return Err(format!(
                    "expected {objects} text objects and no problem: {report}"
                ));
            }
            Ok(())
        },
    );
    report.assert_ok();
    eprintln!("{report}");
}

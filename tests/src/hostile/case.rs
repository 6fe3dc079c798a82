//! One hostile pool file, end to end: open (with recovery), deep check, read everything the safe
//! API reaches, write (allocate, update, free, abort), reopen; with a model of what the writes
//! must have done to the heap.

use std::path::Path;

use pmem_core::check::{check, CheckReport};
use pmem_core::{PSlice, Pool};

use super::{Big, Node, Root};

/// How a case ended, when it ended well.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Open refused the file with a clean error.
    Refused,
    /// Opened; `healthy` if the deep check found no problem; `wrote` if the first write
    /// committed.
    Opened {
        /// The deep check after open found nothing.
        healthy: bool,
        /// The write transactions committed.
        wrote: bool,
    },
}

/// Values the case writes, to be found again.
const MARK: u64 = 0x4d41_524b_0000_0001;
const MARK2: u64 = 0x4d41_524b_0000_0002;
/// Bounds on walks of a hostile structure.
const MAX_WALK: usize = 4096;

fn live(pool: &Pool<Root>) -> u64 {
    pool.stats().heap.live_objects
}

/// Reads everything the safe API reaches from the root and by type, within bounds. Objects
/// the iterator yields must be readable.
pub fn read_all(pool: &Pool<Root>) -> Result<(), String> {
    pool.read(|r| {
        let root = r.root();
        let mut sum = root.count;
        let mut p = root.head;
        for _ in 0..MAX_WALK {
            let Ok(node) = r.get(p) else { break };
            sum = sum.wrapping_add(node.value);
            if let Ok(items) = r.get_slice(node.items) {
                sum = items.iter().fold(sum, |s, &w| s.wrapping_add(w));
            }
            p = node.next;
        }
        if let Ok(big) = r.get(root.big) {
            sum = sum.wrapping_add(big.words[4999]);
        }
        if let Ok(spare) = r.get_slice(root.spare) {
            sum = sum.wrapping_add(spare.len() as u64);
        }
        for node in r.objects::<Node>().take(MAX_WALK) {
            let n = r.get(node).map_err(|e| {
                format!("objects::<Node>() yields {node:?}, which get refuses: {e}")
            })?;
            sum = sum.wrapping_add(n.value);
        }
        for big in r.objects::<Big>().take(64) {
            r.get(big)
                .map_err(|e| format!("objects::<Big>() yields {big:?}, which get refuses: {e}"))?;
        }
        std::hint::black_box(sum);
        Ok(())
    })
    .map_err(|e| e.to_string())?
}

/// `pool`'s check report and live object count must agree with `expected` live objects; if the
/// pool was healthy before, it must still be, with `reachable` objects reachable.
fn agree(
    pool: &Pool<Root>,
    step: &str,
    before: &CheckReport,
    expected_live: u64,
    reachable: u64,
) -> Result<(), String> {
    let now = live(pool);
    if now != expected_live {
        return Err(format!(
            "after {step}: the heap counts {now} live objects, the model {expected_live}"
        ));
    }
    if before.is_healthy() {
        let after = check(pool);
        if !after.is_healthy() || after.reachable_objects != reachable {
            return Err(format!(
                "after {step}: a healthy pool ({} reachable) now checks as ({reachable} expected):\n{after}",
                before.reachable_objects
            ));
        }
    }
    Ok(())
}

/// The logical contents of a pool, as text: the root, the list with its slices, the large
/// object and the spare slice (hashed), and the live object count. Two pools with the same
/// digest hold the same data.
pub fn digest(pool: &Pool<Root>) -> String {
    let hash = |words: &[u64]| {
        words.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &w| {
            (h ^ w).wrapping_mul(0x100_0000_01b3)
        })
    };
    pool.read(|r| {
        let root = r.root();
        let mut out = format!("count {} live {} list", root.count, live(pool));
        let mut p = root.head;
        for _ in 0..MAX_WALK {
            let Ok(node) = r.get(p) else { break };
            let items = r.get_slice(node.items).map_or(u64::MAX, hash);
            out.push_str(&format!(" {}:{:x}", node.value, items));
            p = node.next;
        }
        let big = r.get(root.big).map_or(u64::MAX, |b| hash(&b.words));
        let spare = r.get_slice(root.spare).map_or(u64::MAX, hash);
        out.push_str(&format!(" big {big:x} spare {spare:x}"));
        out
    })
    .expect("no transaction is open on this thread")
}

/// The whole case on the pool file at `path` (written from `bytes`, removed afterwards). With
/// `expect`, the pool must be refused or open to that [`digest`].
pub fn run_file(bytes: &[u8], path: &Path, expect: Option<&str>) -> Result<Outcome, String> {
    let _ = std::fs::remove_file(path);
    std::fs::write(path, bytes).map_err(|e| format!("writing the case file: {e}"))?;
    let result = run_on(path, expect);
    let _ = std::fs::remove_file(path);
    result
}

fn run_on(path: &Path, expect: Option<&str>) -> Result<Outcome, String> {
    let pool = match Pool::<Root>::open(path) {
        Ok(pool) => pool,
        Err(_) => return Ok(Outcome::Refused),
    };
    if let Some(expect) = expect {
        let got = digest(&pool);
        if got != expect {
            let r = pool.info().recovery;
            return Err(format!(
                "a log damaged before its last entry was neither refused nor rolled back to the \
                 state before the transaction (recovery: rolled back {}, {} undo entries applied)\n\
                 expected: {expect}\ngot: {got}",
                r.rolled_back, r.undo_applied
            ));
        }
    }
    let before = check(&pool);
    read_all(&pool)?;
    let live0 = live(&pool);
    if before.live_objects != live0 && before.is_healthy() {
        return Err(format!(
            "a healthy check counts {} live objects, the heap {live0}",
            before.live_objects
        ));
    }
    let reach0 = before.reachable_objects;

    // Push a node with a small slice.
    let pushed = pool.transaction(|tx| -> pmem_core::Result<_> {
        let items = tx.alloc_slice(&[MARK; 5])?;
        let next = tx.root().head;
        let node = tx.alloc(Node {
            value: MARK,
            next,
            items,
        })?;
        tx.root_mut().set_head(node)?;
        let count = tx.root().count;
        tx.root_mut().set_count(count.wrapping_add(1))?;
        Ok((node, next))
    });
    let Ok((node, old_head)) = pushed else {
        return Ok(Outcome::Opened {
            healthy: before.is_healthy(),
            wrote: false,
        });
    };
    agree(&pool, "a push", &before, live0 + 2, reach0 + 2)?;
    pool.read(|r| {
        let n = r.get(node).map_err(|e| format!("the pushed node: {e}"))?;
        let items = r
            .get_slice(n.items)
            .map_err(|e| format!("its items: {e}"))?;
        if r.root().head != node || n.value != MARK || n.next != old_head || items != [MARK; 5] {
            return Err("the pushed node does not read back as written".to_string());
        }
        Ok(())
    })
    .map_err(|e| e.to_string())??;

    // Pop it again, freeing both objects.
    pool.transaction(|tx| {
        let n = tx.get(node)?;
        let (next, items) = (n.next, n.items);
        tx.free_slice(items)?;
        tx.free(node)?;
        tx.root_mut().set_head(next)?;
        let count = tx.root().count;
        tx.root_mut().set_count(count.wrapping_sub(1))
    })
    .map_err(|e| format!("popping the node just pushed: {e}"))?;
    agree(&pool, "a pop", &before, live0, reach0)?;

    // Allocate a span, a large slice and a node, link them, and abort.
    let aborted = pool.transaction(|tx| {
        let big = tx.alloc_zeroed::<Big>()?;
        tx.get_mut(big)?.words[7] = MARK;
        let items = tx.alloc_slice_zeroed::<u64>(3000)?;
        let next = tx.root().head;
        let n = tx.alloc(Node {
            value: MARK,
            next,
            items,
        })?;
        tx.root_mut().set_head(n)?;
        tx.root_mut().set_big(big)?;
        Err::<(), _>(tx.abort())
    });
    // Aborted, or out of space: rolled back either way.
    debug_assert!(aborted.is_err());
    agree(&pool, "an abort", &before, live0, reach0)?;
    read_all(&pool)?;

    // Free what the hostile file holds: the old head and its items, unlinking it.
    let live1 = live(&pool);
    let freed = pool.transaction(|tx| -> pmem_core::Result<_> {
        let head = tx.root().head;
        let n = tx.get(head)?;
        let (next, items) = (n.next, n.items);
        let mut freed = 1;
        if !items.is_null() {
            tx.free_slice(items)?;
            freed += 1;
        }
        tx.free(head)?;
        tx.root_mut().set_head(next)?;
        Ok(freed)
    });
    if let Ok(freed) = freed {
        let now = live(&pool);
        if now != live1 - freed {
            return Err(format!(
                "freeing {freed} objects of the file took the heap from {live1} to {now} live objects"
            ));
        }
    }

    // A last push, to find after reopening.
    let last = pool
        .transaction(|tx| -> pmem_core::Result<_> {
            let next = tx.root().head;
            let n = tx.alloc(Node {
                value: MARK2,
                next,
                items: PSlice::null(),
            })?;
            tx.root_mut().set_head(n)?;
            Ok(n)
        })
        .ok();
    let live_at_close = live(&pool);
    let healthy_at_close = check(&pool).is_healthy();
    drop(pool);

    let pool = Pool::<Root>::open(path)
        .map_err(|e| format!("reopening a pool this library just wrote and closed: {e}"))?;
    if pool.info().recovery != Default::default() {
        return Err(format!(
            "a cleanly closed pool needed recovery: {:?}",
            pool.info().recovery
        ));
    }
    if live(&pool) != live_at_close {
        return Err(format!(
            "closed with {live_at_close} live objects, reopened with {}",
            live(&pool)
        ));
    }
    let after = check(&pool);
    if healthy_at_close && !after.is_healthy() {
        return Err(format!("healthy at close, not after reopening:\n{after}"));
    }
    if let Some(last) = last {
        pool.read(|r| {
            let ok = r.root().head == last && r.get(last).is_ok_and(|n| n.value == MARK2);
            if ok {
                Ok(())
            } else {
                Err("the last committed push is gone after reopening".to_string())
            }
        })
        .map_err(|e| e.to_string())??;
    }
    read_all(&pool)?;
    Ok(Outcome::Opened {
        healthy: before.is_healthy(),
        wrote: true,
    })
}

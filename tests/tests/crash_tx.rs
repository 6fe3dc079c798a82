//! Crash tests of transactions on the simulated persistence domain: at every fence, the
//! nothing-pending image, the everything image and 3 random subsets are reopened through the real
//! recovery path and checked. Each test runs twice: with log lines written non-temporally (the
//! choice on CPUs where streaming is cheaper) and with stores and flushes (the others).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pmem_core::crash::CrashTest;
use pmem_core::{LogWrites, Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Counter {
    value: u64,
    pad: [u8; 56],
    buf: [u64; 32],
}

fn w1_counter_increments(test: CrashTest) {
    let committed = Arc::new(AtomicU64::new(0));
    let seen = committed.clone();
    let report = test.run::<Counter>(
        move |pool| {
            for _ in 0..200 {
                pool.transaction(|tx| {
                    let v = tx.root().value;
                    tx.root_mut().set_value(v + 1)
                })?;
                committed.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        },
        move |pool, _| {
            let done = seen.load(Ordering::SeqCst);
            let value = pool.read(|r| r.root().value).unwrap();
            if value == done || value == done + 1 {
                Ok(())
            } else {
                Err(format!(
                    "counter {value} after {done} committed transactions"
                ))
            }
        },
    );
    report.assert_ok();
    // One fence per transaction, and a few for creating and closing the pool: every one of
    // them was a crash point.
    assert!((200..210).contains(&report.fences), "{report}");
    eprintln!("{report}");
}

#[derive(Persistent)]
#[repr(C)]
struct Account {
    balance: u64,
}

#[derive(Persistent)]
#[repr(C)]
struct Bank {
    accounts: [pmem_core::PPtr<Account>; 4],
}

const TOTAL: u64 = 4_000;

fn balances(pool: &Pool<Bank>) -> Result<Vec<u64>, String> {
    pool.read(|r| {
        r.root()
            .accounts
            .iter()
            .map(|&p| r.get(p).map(|a| a.balance).map_err(|e| e.to_string()))
            .collect()
    })
    .unwrap()
}

/// Transfers between objects keep the sum, whatever the crash: both accounts are updated in one
/// transaction, with single-field setters on one side and a batched get_mut_many on the other.
fn transfers_keep_the_sum(test: CrashTest) {
    let report = test.run::<Bank>(
        |pool| {
            pool.transaction(|tx| -> pmem_core::Result<_> {
                for i in 0..4 {
                    let a = tx.alloc(Account { balance: TOTAL / 4 })?;
                    tx.root_mut().accounts_mut().set_at(i, a)?;
                }
                Ok(())
            })?;
            for i in 0..120u64 {
                let (from, to) = ((i % 4) as usize, ((i * 7 + 1) % 4) as usize);
                if from == to {
                    continue;
                }
                pool.transaction(|tx| {
                    let accounts = tx.root().accounts;
                    let amount = (i * 37) % 100;
                    if i % 2 == 0 {
                        let a = tx.get(accounts[from])?.balance;
                        let b = tx.get(accounts[to])?.balance;
                        if a < amount {
                            return Err(tx.abort());
                        }
                        tx.edit(accounts[from])?.set_balance(a - amount)?;
                        tx.edit(accounts[to])?.set_balance(b + amount)
                    } else {
                        let [a, b] = tx.get_mut_many([accounts[from], accounts[to]])?;
                        let amount = amount.min(a.balance);
                        a.balance -= amount;
                        b.balance += amount;
                        Ok(())
                    }
                })
                .or_else(|e| match e {
                    pmem_core::Error::Aborted { .. } => Ok(()),
                    e => Err(e),
                })?;
            }
            Ok(())
        },
        |pool, _| {
            let null = pool
                .read(|r| r.root().accounts.iter().all(|p| p.is_null()))
                .unwrap();
            if null {
                return Ok(()); // crashed before the setup transaction committed
            }
            let sum: u64 = balances(pool)?.iter().sum();
            if sum == TOTAL {
                Ok(())
            } else {
                Err(format!("sum of balances is {sum}, not {TOTAL}"))
            }
        },
    );
    report.assert_ok();
    eprintln!("{report}");
}

#[derive(Persistent)]
#[repr(C)]
struct List {
    head: pmem_core::PPtr<Node>,
    len: u64,
}

#[derive(Persistent)]
#[repr(C)]
struct Node {
    next: pmem_core::PPtr<Node>,
    value: u64,
    pad: [u8; 48],
}

/// Walks the list; checks the values count down from len - 1 and no node is leaked.
fn check_list(pool: &Pool<List>, committed: u64) -> Result<(), String> {
    pool.read(|r| {
        let mut values = Vec::new();
        let mut p = r.root().head;
        while !p.is_null() {
            let node = r.get(p).map_err(|e| e.to_string())?;
            values.push(node.value);
            p = node.next;
            if values.len() as u64 > committed + 1 {
                return Err("list longer than the pushes made (cycle?)".to_string());
            }
        }
        let len = values.len() as u64;
        if len != committed && len != committed + 1 {
            return Err(format!(
                "list has {len} nodes after {committed} committed pushes"
            ));
        }
        if r.root().len != len {
            return Err(format!(
                "root says {} nodes, the list has {len}",
                r.root().len
            ));
        }
        if values.iter().rev().copied().ne(0..len) {
            return Err(format!("values {values:?} are not the pushes in order"));
        }
        let live = r.objects::<Node>().count() as u64;
        if live != len {
            return Err(format!("{live} nodes allocated but {len} reachable: leak"));
        }
        Ok(())
    })
    .unwrap()
}

/// Pushes `n` nodes, one transaction each (W4), counting each commit in `committed`.
fn push_nodes(pool: &Pool<List>, n: u64, committed: &AtomicU64) -> pmem_core::Result<()> {
    for i in 0..n {
        pool.transaction(|tx| {
            let head = tx.root().head;
            let node = tx.alloc(Node {
                next: head,
                value: i,
                pad: [0; 48],
            })?;
            let mut root = tx.root_mut();
            root.set_head(node)?;
            root.set_len(i + 1)
        })?;
        committed.fetch_add(1, Ordering::SeqCst);
    }
    Ok(())
}

fn w4_list_push(test: CrashTest) {
    let committed = Arc::new(AtomicU64::new(0));
    let seen = committed.clone();
    let report = test.run::<List>(
        move |pool| push_nodes(pool, 150, &committed),
        move |pool, _| check_list(pool, seen.load(Ordering::SeqCst)),
    );
    report.assert_ok();
    eprintln!("{report}");
}

/// A transaction that writes the root, pushes nodes and frees one, then fails: at every crash
/// point inside it, and after it, the pool is byte-identical to before it.
fn aborted_transaction_leaves_no_trace(test: CrashTest) {
    fn image(pool: &Pool<List>) -> Vec<u8> {
        pool.read(|r| {
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&r.root().len.to_le_bytes());
            bytes.extend_from_slice(&r.root().head.offset().to_le_bytes());
            for p in r.objects::<Node>() {
                let n = r.get(p).unwrap();
                bytes.extend_from_slice(&p.offset().to_le_bytes());
                bytes.extend_from_slice(&n.next.offset().to_le_bytes());
                bytes.extend_from_slice(&n.value.to_le_bytes());
                bytes.extend_from_slice(&n.pad);
            }
            bytes
        })
        .unwrap()
    }
    let before: Arc<std::sync::Mutex<Option<Vec<u8>>>> = Arc::default();
    let setter = before.clone();
    let report = test.run::<List>(
        move |pool| {
            pool.transaction(|tx| {
                for i in 0..3u64 {
                    let head = tx.root().head;
                    let node = tx.alloc(Node {
                        next: head,
                        value: i,
                        pad: [7; 48],
                    })?;
                    tx.root_mut().set_head(node)?;
                }
                tx.root_mut().set_len(3)
            })?;
            *setter.lock().unwrap() = Some(image(pool));
            let failed = pool.transaction(|tx| {
                tx.root_mut().set_len(99)?;
                let head = tx.root().head;
                let second = tx.get(head)?.next;
                tx.edit(head)?.set_pad([1; 48])?;
                for i in 0..5u64 {
                    let node = tx.alloc(Node {
                        next: head,
                        value: 100 + i,
                        pad: [9; 48],
                    })?;
                    tx.root_mut().set_head(node)?;
                }
                tx.free(second)?;
                Err::<(), _>(tx.abort())
            });
            assert!(failed.is_err());
            Ok(())
        },
        move |pool, _| match &*before.lock().unwrap() {
            None => Ok(()),
            Some(expected) if image(pool) == *expected => Ok(()),
            Some(_) => Err("state differs from before the aborted transaction".to_string()),
        },
    );
    report.assert_ok();
    eprintln!("{report}");
}

/// A crash during recovery, at each of recovery's own fences, recovers again to a valid state.
fn crash_during_recovery(test: CrashTest) {
    let committed = Arc::new(AtomicU64::new(0));
    let seen = committed.clone();
    let report = test.crash_during_recovery(true).run::<List>(
        move |pool| push_nodes(pool, 25, &committed),
        move |pool, _| check_list(pool, seen.load(Ordering::SeqCst)),
    );
    report.assert_ok();
    eprintln!("{report}");
}

/// The two ways log lines are written, each in its own crash test.
fn tests() -> [(&'static str, CrashTest); 2] {
    [LogWrites::NonTemporal, LogWrites::Flushed]
        .map(|w| (w.name(), CrashTest::new(1 << 20).log_writes(w)))
}

/// Runs `f` once per way of writing log lines, naming the way if it fails.
fn each_way(f: fn(CrashTest)) {
    for (name, test) in tests() {
        eprintln!("log writes: {name}");
        f(test);
    }
}

#[derive(Persistent)]
#[repr(C)]
struct Wide {
    odd: [u8; 1001],
    pad: [u8; 7],
    count: u64,
}

/// Undo entries larger than a writer's buffered head (1,009 payload bytes, ending inside a
/// word) and several per transaction: every crash image shows the fields all before or all
/// after.
fn large_undo_entries(test: CrashTest) {
    let committed = Arc::new(AtomicU64::new(0));
    let seen = committed.clone();
    let report = test.run::<Wide>(
        move |pool| {
            for i in 1..=40u64 {
                pool.transaction(|tx| {
                    tx.root_mut().set_odd([i as u8; 1001])?;
                    tx.root_mut().set_pad([i as u8; 7])?;
                    tx.root_mut().set_count(i)
                })?;
                committed.fetch_add(1, Ordering::SeqCst);
            }
            Ok(())
        },
        move |pool, _| {
            let done = seen.load(Ordering::SeqCst);
            pool.read(|r| {
                let root = r.root();
                let c = root.count;
                let consistent = root.odd.iter().all(|&b| b == c as u8)
                    && root.pad.iter().all(|&b| b == c as u8);
                if !consistent {
                    Err(format!("fields of transaction {c} torn"))
                } else if c != done && c != done + 1 {
                    Err(format!("count {c} after {done} committed transactions"))
                } else {
                    Ok(())
                }
            })
            .map_err(|e| e.to_string())?
        },
    );
    report.assert_ok();
    eprintln!("{report}");
}

#[test]
fn w1_counter_increments_both_ways() {
    each_way(w1_counter_increments);
}

#[test]
fn transfers_keep_the_sum_both_ways() {
    each_way(transfers_keep_the_sum);
}

#[test]
fn w4_list_push_both_ways() {
    each_way(w4_list_push);
}

#[test]
fn aborted_transaction_leaves_no_trace_both_ways() {
    each_way(aborted_transaction_leaves_no_trace);
}

#[test]
fn crash_during_recovery_both_ways() {
    each_way(crash_during_recovery);
}

#[test]
fn large_undo_entries_both_ways() {
    each_way(large_undo_entries);
}

/// One transaction allocating 40 nodes: its commit record (40 new-object ranges, their heap
/// ops) outgrows a streamed entry's buffered head, so its later lines go out as they fill.
fn many_allocations_in_one_transaction(test: CrashTest) {
    let committed = Arc::new(AtomicU64::new(0));
    let seen = committed.clone();
    let report = test.run::<List>(
        move |pool| {
            for round in 0..3u64 {
                pool.transaction(|tx| {
                    for i in 0..40u64 {
                        let head = tx.root().head;
                        let node = tx.alloc(Node {
                            next: head,
                            value: round * 40 + i,
                            pad: [round as u8; 48],
                        })?;
                        tx.root_mut().set_head(node)?;
                    }
                    let len = tx.root().len;
                    tx.root_mut().set_len(len + 40)
                })?;
                committed.fetch_add(40, Ordering::SeqCst);
            }
            Ok(())
        },
        move |pool, _| {
            let done = seen.load(Ordering::SeqCst);
            let len = pool.read(|r| r.root().len).map_err(|e| e.to_string())?;
            if len != done && len != done + 40 {
                return Err(format!("{len} nodes after {done} committed"));
            }
            check_list(pool, len)
        },
    );
    report.assert_ok();
    eprintln!("{report}");
}

#[test]
fn many_allocations_in_one_transaction_both_ways() {
    each_way(many_allocations_in_one_transaction);
}

#[derive(Persistent)]
#[repr(C)]
struct Scattered {
    /// `WORDS` words; a transaction writes `k` of them, each on its own, to its round number.
    words: pmem_core::PSlice<u64>,
    /// The round of the last committed transaction.
    round: u64,
    /// An object each round allocates and the next one frees.
    extra: pmem_core::PPtr<Node>,
}

const WORDS: u64 = 16_384;

/// The `k` scattered words round `round` writes (a stride coprime to `WORDS`, so no two are in
/// one cache line for small `k` and they spread over the whole slice).
fn scattered(round: u64, k: u64) -> impl Iterator<Item = u64> {
    (0..k).map(move |i| (round * 7919 + i * 1031) % WORDS)
}

/// Transactions of 1, 10 and 1,000 scattered ranges, each written on its own, with an
/// allocation and a free in each, and an aborted one between: after every crash, each
/// transaction's words all hold its round (committed) or none do, and the round counter, the
/// object and the heap agree.
fn scattered_ranges(test: CrashTest) {
    let plan = [(1u64, 1u64), (2, 10), (3, 1000), (4, 10), (5, 1000)];
    let committed = Arc::new(AtomicU64::new(0));
    let seen = committed.clone();
    // Few fences (one per transaction), so many torn images at each.
    let report = test.random_subsets(64).run::<Scattered>(
        move |pool| {
            pool.transaction(|tx| {
                let words = tx.alloc_slice_zeroed::<u64>(WORDS)?;
                tx.root_mut().set_words(words)
            })?;
            for (round, k) in plan {
                pool.transaction(|tx| {
                    let mut words = tx.edit_slice(tx.root().words)?;
                    for w in scattered(round, k) {
                        words.set_at(w as usize, round)?;
                    }
                    let old = tx.root().extra;
                    if !old.is_null() {
                        tx.free(old)?;
                    }
                    let extra = tx.alloc(Node {
                        next: pmem_core::PPtr::null(),
                        value: round,
                        pad: [round as u8; 48],
                    })?;
                    tx.root_mut().set_extra(extra)?;
                    tx.root_mut().set_round(round)
                })?;
                committed.store(round, Ordering::SeqCst);
                // An aborted transaction over the same words leaves no trace.
                let _ = pool.transaction(|tx| -> pmem_core::Result<()> {
                    let mut words = tx.edit_slice(tx.root().words)?;
                    for w in scattered(round, k) {
                        words.set_at(w as usize, u64::MAX)?;
                    }
                    tx.alloc(Node {
                        next: pmem_core::PPtr::null(),
                        value: 0,
                        pad: [0; 48],
                    })?;
                    Err(tx.abort())
                });
            }
            Ok(())
        },
        move |pool, _| {
            let done = seen.load(Ordering::SeqCst);
            let (words, round, extra) = pool
                .read(|r| {
                    let root = r.root();
                    let words = r.get_slice(root.words).map(<[u64]>::to_vec);
                    let extra = r.get(root.extra).map(|n| n.value).ok();
                    (words, root.round, extra)
                })
                .map_err(|e| e.to_string())?;
            if round != done && round != done + 1 {
                return Err(format!("round {round} after {done} committed"));
            }
            let Some(words) = words.ok().filter(|w| w.len() == WORDS as usize) else {
                return if round == 0 {
                    Ok(())
                } else {
                    Err(format!("round {round} but no words"))
                };
            };
            // Replaying the rounds up to `round` gives exactly the words the pool holds.
            let mut want = vec![0u64; WORDS as usize];
            for (r, k) in plan.iter().copied().filter(|&(r, _)| r <= round) {
                for w in scattered(r, k) {
                    want[w as usize] = r;
                }
            }
            if let Some(i) = (0..WORDS as usize).find(|&i| words[i] != want[i]) {
                return Err(format!(
                    "after round {round}, word {i} is {} not {}",
                    words[i], want[i]
                ));
            }
            if round > 0 && extra != Some(round) {
                return Err(format!("round {round} but its object holds {extra:?}"));
            }
            let report = pmem_core::check::check(pool);
            if !report.is_healthy() {
                return Err(format!("round {round}: {report}"));
            }
            Ok(())
        },
    );
    report.assert_ok();
    // One fence for each transaction however many ranges it writes, none for an abort: the
    // slice's allocation, five rounds, and the pool's own.
    assert!(report.fences <= 12, "{report}");
    eprintln!("{report}");
}

#[test]
fn scattered_ranges_both_ways() {
    each_way(scattered_ranges);
}

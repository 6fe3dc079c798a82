//! `demo [POOL]`: a transaction killed half-way, and what recovery makes of it.
//!
//! The pool holds two bank accounts and a journal of transfers. The demo commits a few
//! transfers, then starts a copy of itself that opens the pool, begins a transfer, debits one
//! account, and kills itself with SIGKILL before crediting the other. Reopening the pool runs
//! recovery, which rolls the half-done transfer back: the balances, the total and the journal
//! are exactly those of the last committed transfer, and the deep check finds the pool healthy
//! with nothing leaked.
//!
//! The pool lives in the system's temporary directory unless a path is given, and persists
//! between runs: each run goes on from where the last one stopped.

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use clap::Parser;
use pmem_core::{PPtr, PSlice, Persistent, Pool, Result, Tx};

/// The root: two accounts and the newest journal entry.
#[derive(Persistent, Clone, Copy)]
#[repr(C)]
struct Bank {
    alice: u64,
    bob: u64,
    /// Transfers committed so far.
    transfers: u64,
    journal: PPtr<Entry>,
}

/// One committed transfer, newest first.
#[derive(Persistent, Clone, Copy)]
#[repr(C)]
struct Entry {
    seq: u64,
    note: PSlice<u8>,
    next: PPtr<Entry>,
}

const LAYOUT: &str = "pmem-demo";
const POOL_SIZE: u64 = 8 << 20;
const OPENING_BALANCE: u64 = 100;
const TOTAL: u64 = 2 * OPENING_BALANCE;
/// The argument that makes the demo the child that dies mid-transaction.
const CHILD_FLAG: &str = "--crash-child";

/// The bank as a reader sees it: balances and the journal, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    alice: u64,
    bob: u64,
    transfers: u64,
    journal: Vec<String>,
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "alice {}, bob {} (total {}), {} journal entries",
            self.alice,
            self.bob,
            self.alice + self.bob,
            self.journal.len()
        )
    }
}

fn open(path: &Path) -> Result<Pool<Bank>> {
    Pool::<Bank>::builder().layout(LAYOUT).open(path)
}

fn state(pool: &Pool<Bank>) -> Result<State> {
    pool.read(|r| {
        let bank = *r.root();
        let mut journal = Vec::new();
        let mut p = bank.journal;
        while !p.is_null() && journal.len() as u64 <= bank.transfers {
            let entry = r.get(p)?;
            let note = String::from_utf8_lossy(r.get_slice(entry.note)?);
            journal.push(format!("#{} {note}", entry.seq));
            p = entry.next;
        }
        Ok(State {
            alice: bank.alice,
            bob: bank.bob,
            transfers: bank.transfers,
            journal,
        })
    })?
}

/// Who pays, and how much, for transfer number `seq`: alternating, never more than the payer has.
fn plan(bank: &Bank, seq: u64) -> (bool, u64) {
    let alice_pays = seq % 2 == 1;
    let balance = if alice_pays { bank.alice } else { bank.bob };
    (alice_pays, (seq * 17 % 40 + 5).min(balance))
}

fn note(alice_pays: bool, amount: u64) -> String {
    let (from, to) = if alice_pays {
        ("alice", "bob")
    } else {
        ("bob", "alice")
    };
    format!("{from} -> {to} {amount}")
}

/// Debits the payer (first step of a transfer).
fn debit(tx: &mut Tx<'_, Bank>, alice_pays: bool, amount: u64) -> Result<()> {
    let bank = *tx.root();
    let mut root = tx.root_mut();
    if alice_pays {
        root.set_alice(bank.alice - amount)
    } else {
        root.set_bob(bank.bob - amount)
    }
}

/// Appends the journal entry of transfer `seq`.
fn journal(tx: &mut Tx<'_, Bank>, seq: u64, text: &str) -> Result<()> {
    let note = tx.alloc_slice(text.as_bytes())?;
    let next = tx.root().journal;
    let entry = tx.alloc(Entry { seq, note, next })?;
    let mut root = tx.root_mut();
    root.set_journal(entry)?;
    root.set_transfers(seq)
}

/// Credits the payee (last step of a transfer).
fn credit(tx: &mut Tx<'_, Bank>, alice_pays: bool, amount: u64) -> Result<()> {
    let bank = *tx.root();
    let mut root = tx.root_mut();
    if alice_pays {
        root.set_bob(bank.bob + amount)
    } else {
        root.set_alice(bank.alice + amount)
    }
}

/// One whole transfer, committed. Returns its journal line.
fn transfer(pool: &Pool<Bank>) -> Result<String> {
    pool.transaction(|tx| {
        let bank = *tx.root();
        let seq = bank.transfers + 1;
        let (alice_pays, amount) = plan(&bank, seq);
        let text = note(alice_pays, amount);
        debit(tx, alice_pays, amount)?;
        journal(tx, seq, &text)?;
        credit(tx, alice_pays, amount)?;
        Ok(format!("#{seq} {text}"))
    })
}

/// The child: begins a transfer, does all but the credit, and dies by SIGKILL.
fn crash_child(path: &Path) -> ExitCode {
    let pool = match open(path) {
        Ok(pool) => pool,
        Err(e) => {
            println!("could not open the pool: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome: Result<()> = pool.transaction(|tx| {
        let bank = *tx.root();
        let seq = bank.transfers + 1;
        let (alice_pays, amount) = plan(&bank, seq);
        let text = note(alice_pays, amount);
        println!("opened the pool and began transfer #{seq}: {text}");
        debit(tx, alice_pays, amount)?;
        let (who, before, after) = if alice_pays {
            ("alice", bank.alice, tx.root().alice)
        } else {
            ("bob", bank.bob, tx.root().bob)
        };
        println!("debited {who}: {before} -> {after}, written in place in the mapped pool file");
        journal(tx, seq, &text)?;
        println!("allocated and linked journal entry #{seq}");
        println!("killing itself with SIGKILL before the credit and the commit");
        // SAFETY: getpid and kill have no memory-safety preconditions; SIGKILL ends the process
        // here, with the transaction open, no destructor run and no chance to clean up.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        unreachable!("SIGKILL is not caught");
    });
    // Only if the kill failed.
    println!("still alive?! {outcome:?}");
    ExitCode::FAILURE
}

fn describe_status(status: std::process::ExitStatus) -> String {
    match status.signal() {
        Some(libc::SIGKILL) => "killed by signal 9 (SIGKILL)".into(),
        Some(sig) => format!("killed by signal {sig}"),
        None => format!("exited with {status}, but it should have been killed"),
    }
}

/// Runs the demo; `Err` is a failure to explain.
fn run(path: &Path) -> std::result::Result<(), String> {
    fn e(what: &'static str) -> impl Fn(pmem_core::Error) -> String {
        move |err| format!("{what}: {err}")
    }
    println!("pmem demo: a transaction killed half-way, and what recovery makes of it\n");

    let existed = path.exists();
    let pool = Pool::<Bank>::builder()
        .layout(LAYOUT)
        .open_or_create(path, POOL_SIZE)
        .map_err(e("opening the pool"))?;
    if pool
        .read(|r| r.root().transfers == 0 && r.root().alice + r.root().bob == 0)
        .map_err(e("reading the pool"))?
    {
        pool.transaction(|tx| {
            let mut root = tx.root_mut();
            root.set_alice(OPENING_BALANCE)?;
            root.set_bob(OPENING_BALANCE)
        })
        .map_err(e("opening the accounts"))?;
    }
    let info = pool.info();
    println!(
        "pool  {} ({}, {} MiB, flush mode {:?})",
        path.display(),
        if existed {
            "reopened from an earlier run"
        } else {
            "new"
        },
        info.pool_size >> 20,
        info.flush_mode,
    );
    println!("      {}\n", state(&pool).map_err(e("reading"))?);

    println!("1. Three transfers, each one transaction: debit, journal entry, credit");
    for _ in 0..3 {
        let line = transfer(&pool).map_err(e("transfer"))?;
        let s = state(&pool).map_err(e("reading"))?;
        println!(
            "   {line:<20} committed: alice {:>3}, bob {:>3}",
            s.alice, s.bob
        );
    }
    let committed = state(&pool).map_err(e("reading"))?;
    println!("   last committed state: {committed}\n");
    // Close the pool: the child must be able to open it.
    drop(pool);

    println!("2. A child process starts the next transfer and is killed before it commits");
    let exe = std::env::current_exe().map_err(|err| format!("finding this program: {err}"))?;
    let mut child = Command::new(exe)
        .arg(CHILD_FLAG)
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|err| format!("starting the child: {err}"))?;
    let pid = child.id();
    for line in BufReader::new(child.stdout.take().expect("piped stdout")).lines() {
        let line = line.map_err(|err| format!("reading the child: {err}"))?;
        println!("   [child {pid}] {line}");
    }
    let status = child
        .wait()
        .map_err(|err| format!("waiting for the child: {err}"))?;
    println!("   child {pid} {}", describe_status(status));
    if status.signal() != Some(libc::SIGKILL) {
        return Err("the child was not killed mid-transaction".into());
    }
    match pmem_core::check::check_file(path) {
        Ok(report) => {
            for note in &report.notes {
                println!("   read-only check of the file as the child left it:\n     {note}");
            }
        }
        Err(err) => println!("   (could not inspect the file: {err})"),
    }
    println!();

    println!("3. Reopen: recovery runs before the pool is handed out");
    let pool = open(path).map_err(e("reopening the pool"))?;
    let r = pool.info().recovery;
    if r.rolled_back {
        println!(
            "   recovery dropped the interrupted transaction (its commit record was not whole): {} undo entries applied",
            r.undo_applied
        );
    } else {
        println!(
            "   recovery found nothing of the interrupted transaction (its writes wait in memory until it commits) and wrote the last commit's log again: {} redo entries, {} heap operations",
            r.redo_applied, r.ops_replayed
        );
    }
    let recovered = state(&pool).map_err(e("reading"))?;
    println!("   recovered state:      {recovered}");
    if recovered != committed {
        return Err(format!(
            "the recovered state differs from the last committed one:\n  committed {committed:?}\n  recovered {recovered:?}"
        ));
    }
    println!("   = the last committed state: no half transfer, no stray journal entry");
    let report = pmem_core::check::check(&pool);
    if !report.is_healthy() || !report.unreachable.is_empty() {
        return Err(format!("the deep check found problems:\n{report}"));
    }
    println!(
        "   deep check: healthy, {} objects, all {} reachable from the root, nothing leaked\n",
        report.live_objects, report.reachable_objects
    );

    println!("4. The pool goes on as if the crash never happened");
    let line = transfer(&pool).map_err(e("transfer"))?;
    let s = state(&pool).map_err(e("reading"))?;
    println!(
        "   {line:<20} committed: alice {:>3}, bob {:>3}",
        s.alice, s.bob
    );
    if s.alice + s.bob != TOTAL {
        return Err(format!("the total is {}, not {TOTAL}", s.alice + s.bob));
    }
    println!(
        "\nThe pool stays at {}; run the demo again to go on from here, or delete it to start over.",
        path.display()
    );
    Ok(())
}

/// Commits transfers between two accounts in the pool file POOL, kills a child process in the
/// middle of a transfer, and shows that recovery restores the last committed state.
#[derive(Debug, Parser)]
#[command(name = "demo", version)]
struct Args {
    /// The pool file (default: pmem-demo.pool in the temporary directory).
    pool: Option<PathBuf>,
    /// Run as the child the demo kills, on this pool.
    #[arg(
        long = "crash-child",
        value_name = "POOL",
        hide = true,
        conflicts_with = "pool"
    )]
    crash_child: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = match pmem_examples::args::parse::<Args>() {
        Ok(args) => args,
        Err(status) => return status,
    };
    if let Some(path) = &args.crash_child {
        return crash_child(path);
    }
    let path = args
        .pool
        .unwrap_or_else(|| std::env::temp_dir().join("pmem-demo.pool"));
    match run(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("demo: {err}");
            ExitCode::FAILURE
        }
    }
}

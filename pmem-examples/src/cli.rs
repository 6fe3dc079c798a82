//! The command-line front ends of the example structures, in the style of PMDK's `mapcli`:
//! `hashmap-cli`, `btree-cli` and `queue-cli`.
//!
//! Each program takes a pool file and either one command (`hashmap-cli data.pool insert 1 10`)
//! or none, in which case it reads commands from standard input, one per line. Every command
//! that changes the structure is one transaction. The exit status is 0 on success and 1 on any
//! error (usage included), with the error on standard error.

use std::fmt::Display;
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use pmem_core::{Persistent, Pool, Tx};

use pmem_collections::{PBTreeMap, PHashMap};

use crate::messages::MessageQueue;
use crate::{transaction, PoolRead, Result};

/// Size of the pool files the programs create.
pub const POOL_SIZE: u64 = 16 << 20;

/// What a command prints, or why it failed.
pub type Outcome = std::result::Result<(), String>;

/// The operations the map programs need, implemented by [`PHashMap`] and [`PBTreeMap`].
pub trait Map: Persistent + Copy + Eq {
    /// The pool layout name for a pool holding this map.
    const LAYOUT_NAME: &'static str;
    /// The null handle.
    fn null() -> Self;
    /// Allocates an empty map.
    fn create<R: Persistent>(tx: &mut Tx<'_, R>) -> Result<Self>;
    /// Sets `key` to `value`; returns the value it replaced.
    fn insert<R: Persistent>(self, tx: &mut Tx<'_, R>, key: u64, value: u64)
        -> Result<Option<u64>>;
    /// Removes `key`; returns its value.
    fn remove<R: Persistent>(self, tx: &mut Tx<'_, R>, key: u64) -> Result<Option<u64>>;
    /// The value of `key`.
    fn get(self, r: &impl PoolRead, key: u64) -> Result<Option<u64>>;
    /// Number of entries.
    fn len(self, r: &impl PoolRead) -> Result<u64>;
    /// Every entry.
    fn entries(self, r: &impl PoolRead) -> Result<Vec<(u64, u64)>>;
    /// Checks the structure's invariants and returns the entries.
    fn verify(self, r: &impl PoolRead) -> Result<Vec<(u64, u64)>>;
}

macro_rules! impl_map {
    ($t:ty, $layout:literal) => {
        impl Map for $t {
            const LAYOUT_NAME: &'static str = $layout;
            fn null() -> Self {
                <$t>::null()
            }
            fn create<R: Persistent>(tx: &mut Tx<'_, R>) -> Result<Self> {
                Ok(<$t>::new(tx)?)
            }
            fn insert<R: Persistent>(
                self,
                tx: &mut Tx<'_, R>,
                key: u64,
                value: u64,
            ) -> Result<Option<u64>> {
                Ok(<$t>::insert(self, tx, key, value)?)
            }
            fn remove<R: Persistent>(self, tx: &mut Tx<'_, R>, key: u64) -> Result<Option<u64>> {
                Ok(<$t>::remove(self, tx, &key)?)
            }
            fn get(self, r: &impl PoolRead, key: u64) -> Result<Option<u64>> {
                Ok(<$t>::get(self, r, &key)?.copied())
            }
            fn len(self, r: &impl PoolRead) -> Result<u64> {
                Ok(<$t>::len(self, r)?)
            }
            fn entries(self, r: &impl PoolRead) -> Result<Vec<(u64, u64)>> {
                let entries: pmem_collections::Result<Vec<(u64, u64)>> =
                    self.iter(r).map(|e| e.map(|(&k, &v)| (k, v))).collect();
                Ok(entries?)
            }
            fn verify(self, r: &impl PoolRead) -> Result<Vec<(u64, u64)>> {
                <$t>::verify(self, r)?;
                self.entries(r)
            }
        }
    };
}

impl_map!(PHashMap<u64, u64>, "hashmap");
impl_map!(PBTreeMap<u64, u64>, "btree");

/// The root of a map program's pool.
#[derive(Persistent, Debug)]
#[repr(C)]
pub struct MapRoot<M> {
    /// The map.
    pub map: M,
}

/// The root of `queue-cli`'s pool.
#[derive(Persistent, Debug)]
#[repr(C)]
pub struct QueueRoot {
    /// The queue.
    pub queue: MessageQueue,
}

/// Opens the map pool at `path`, creating the file and the map if there are none.
pub fn open_map<M: Map>(path: &Path) -> Result<Pool<MapRoot<M>>> {
    let pool = Pool::<MapRoot<M>>::builder()
        .layout(M::LAYOUT_NAME)
        .open_or_create(path, POOL_SIZE)?;
    ensure_map(&pool)?;
    Ok(pool)
}

/// Creates the map in a pool whose root has none yet.
pub fn ensure_map<M: Map>(pool: &Pool<MapRoot<M>>) -> Result<M> {
    transaction(pool, |tx| {
        let map = tx.root().map;
        if map != M::null() {
            return Ok(map);
        }
        let map = M::create(tx)?;
        tx.root_mut().set_map(map)?;
        Ok(map)
    })
}

/// Opens the queue pool at `path`, creating the file and the queue if there are none.
pub fn open_queue(path: &Path) -> Result<Pool<QueueRoot>> {
    let pool = Pool::<QueueRoot>::builder()
        .layout("queue")
        .open_or_create(path, POOL_SIZE)?;
    transaction(&pool, |tx| {
        if tx.root().queue.is_null() {
            let queue = MessageQueue::create(tx)?;
            tx.root_mut().set_queue(queue)?;
        }
        Ok(())
    })?;
    Ok(pool)
}

/// The commands of the map programs.
pub const MAP_COMMANDS: &str = "\
  insert KEY VALUE   set KEY to VALUE
  get KEY            print the value of KEY (an error if there is none)
  remove KEY         remove KEY and print its value (an error if there is none)
  list               print every entry as `KEY VALUE`, in key order
  len                print the number of entries
  check              check the map's invariants and the pool's consistency";

/// The commands of `queue-cli`.
pub const QUEUE_COMMANDS: &str = "\
  enqueue MESSAGE    append MESSAGE (the rest of the line) at the tail
  dequeue            remove the message at the head and print it (an error if empty)
  peek               print the message at the head, leaving it there
  list               print every message, head first
  len                print the number of messages
  check              check the queue's invariants and the pool's consistency";

fn err(e: impl Display) -> String {
    e.to_string()
}

/// An output error, as a message.
fn io(e: std::io::Error) -> String {
    format!("writing the output: {e}")
}

fn parse_u64(word: &str) -> std::result::Result<u64, String> {
    let parsed = match word.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => word.parse(),
    };
    parsed.map_err(|_| format!("`{word}` is not a number from 0 to {}", u64::MAX))
}

fn arity(words: &[&str], n: usize, usage: &str) -> Outcome {
    if words.len() == n + 1 {
        Ok(())
    } else {
        Err(format!("usage: {usage}"))
    }
}

/// Runs one map command (`words[0]` is its name) on the pool's map.
pub fn map_command<M: Map>(
    pool: &Pool<MapRoot<M>>,
    words: &[&str],
    out: &mut dyn Write,
) -> Outcome {
    let map = pool.read(|r| r.root().map).map_err(err)?;
    match words.first().copied().unwrap_or("") {
        "insert" => {
            arity(words, 2, "insert KEY VALUE")?;
            let (key, value) = (parse_u64(words[1])?, parse_u64(words[2])?);
            let old = transaction(pool, |tx| map.insert(tx, key, value)).map_err(err)?;
            match old {
                None => writeln!(out, "inserted {key} -> {value}"),
                Some(old) => writeln!(out, "updated {key} -> {value} (was {old})"),
            }
            .map_err(io)
        }
        "get" => {
            arity(words, 1, "get KEY")?;
            let key = parse_u64(words[1])?;
            match pool.read(|r| map.get(r, key)).map_err(err)?.map_err(err)? {
                Some(value) => writeln!(out, "{value}").map_err(io),
                None => Err(format!("key {key} not found")),
            }
        }
        "remove" => {
            arity(words, 1, "remove KEY")?;
            let key = parse_u64(words[1])?;
            match transaction(pool, |tx| map.remove(tx, key)).map_err(err)? {
                Some(value) => writeln!(out, "removed {key} (value {value})").map_err(io),
                None => Err(format!("key {key} not found")),
            }
        }
        "list" => {
            arity(words, 0, "list")?;
            let mut entries = pool.read(|r| map.entries(r)).map_err(err)?.map_err(err)?;
            entries.sort_unstable();
            for (k, v) in entries {
                writeln!(out, "{k} {v}").map_err(io)?;
            }
            Ok(())
        }
        "len" => {
            arity(words, 0, "len")?;
            let len = pool.read(|r| map.len(r)).map_err(err)?.map_err(err)?;
            writeln!(out, "{len}").map_err(io)
        }
        "check" => {
            arity(words, 0, "check")?;
            let entries = pool.read(|r| map.verify(r)).map_err(err)?.map_err(err)?;
            let report = pmem_core::check::check(pool);
            check_outcome(&report, &format!("{} entries", entries.len()), out)
        }
        "" => Err("no command given".into()),
        other => Err(format!(
            "unknown command `{other}`; commands:\n{MAP_COMMANDS}"
        )),
    }
}

/// Runs one queue command (`words[0]` is its name) on the pool's queue.
pub fn queue_command(pool: &Pool<QueueRoot>, words: &[&str], out: &mut dyn Write) -> Outcome {
    let queue = pool.read(|r| r.root().queue).map_err(err)?;
    let print = |out: &mut dyn Write, message: &[u8]| {
        out.write_all(message)
            .and_then(|()| out.write_all(b"\n"))
            .map_err(io)
    };
    match words.first().copied().unwrap_or("") {
        "enqueue" => {
            if words.len() < 2 {
                return Err("usage: enqueue MESSAGE".into());
            }
            let message = words[1..].join(" ");
            transaction(pool, |tx| queue.enqueue(tx, message.as_bytes())).map_err(err)
        }
        "dequeue" => {
            arity(words, 0, "dequeue")?;
            match transaction(pool, |tx| queue.dequeue(tx)).map_err(err)? {
                Some(message) => print(out, &message),
                None => Err("the queue is empty".into()),
            }
        }
        "peek" => {
            arity(words, 0, "peek")?;
            match pool.read(|r| queue.peek(r)).map_err(err)?.map_err(err)? {
                Some(message) => print(out, &message),
                None => Err("the queue is empty".into()),
            }
        }
        "list" => {
            arity(words, 0, "list")?;
            pool.read(|r| {
                for message in queue.iter(r) {
                    print(out, &message.map_err(err)?)?;
                }
                Ok(())
            })
            .map_err(err)?
        }
        "len" => {
            arity(words, 0, "len")?;
            let len = pool.read(|r| queue.len(r)).map_err(err)?.map_err(err)?;
            writeln!(out, "{len}").map_err(io)
        }
        "check" => {
            arity(words, 0, "check")?;
            let messages = pool.read(|r| queue.verify(r)).map_err(err)?.map_err(err)?;
            let report = pmem_core::check::check(pool);
            check_outcome(&report, &format!("{} messages", messages.len()), out)
        }
        "" => Err("no command given".into()),
        other => Err(format!(
            "unknown command `{other}`; commands:\n{QUEUE_COMMANDS}"
        )),
    }
}

fn check_outcome(
    report: &pmem_core::check::CheckReport,
    contents: &str,
    out: &mut dyn Write,
) -> Outcome {
    if !report.is_healthy() {
        return Err(format!("the pool is damaged:\n{report}"));
    }
    if !report.unreachable.is_empty() {
        return Err(format!(
            "{} objects are allocated but unreachable (leaked)",
            report.unreachable.len()
        ));
    }
    writeln!(
        out,
        "ok: {contents}, structure valid, pool healthy ({} objects, all reachable)",
        report.live_objects
    )
    .map_err(io)
}

/// The `main` of a structure program: `program POOL [COMMAND ARGS...]`.
///
/// Opens the pool with `open`, then runs the command given on the command line with `exec`, or,
/// without one, each line of standard input (prompting when it is a terminal). Returns exit
/// status 0 if every command succeeded and 1 otherwise.
pub fn main<P>(
    program: &str,
    commands: &str,
    args: impl IntoIterator<Item = String>,
    open: impl FnOnce(&Path) -> Result<P>,
    exec: impl Fn(&P, &[&str], &mut dyn Write) -> Outcome,
) -> ExitCode {
    let args: Vec<String> = args.into_iter().collect();
    let usage = format!(
        "usage: {program} POOL [COMMAND ARGS...]\n\n\
         Runs COMMAND on the pool file POOL (created if missing), or without COMMAND, reads\n\
         commands from standard input, one per line. Commands:\n{commands}"
    );
    match args.first().map(String::as_str) {
        None => {
            eprintln!("{program}: missing the pool file\n{usage}");
            return ExitCode::FAILURE;
        }
        Some("-h" | "--help") => {
            println!("{usage}");
            return ExitCode::SUCCESS;
        }
        Some(_) => {}
    }
    let path = Path::new(&args[0]);
    let pool = match open(path) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("{program}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stdout = std::io::stdout();
    if args.len() > 1 {
        let words: Vec<&str> = args[1..].iter().map(String::as_str).collect();
        return match exec(&pool, &words, &mut stdout.lock()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{program}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    interactive(program, commands, &pool, exec)
}

fn interactive<P>(
    program: &str,
    commands: &str,
    pool: &P,
    exec: impl Fn(&P, &[&str], &mut dyn Write) -> Outcome,
) -> ExitCode {
    let stdin = std::io::stdin();
    let prompt = stdin.is_terminal();
    let mut failed = false;
    let mut lines = stdin.lock().lines();
    loop {
        if prompt {
            print!("{program}> ");
            let _ = std::io::stdout().flush();
        }
        let line = match lines.next() {
            None => break,
            Some(Ok(line)) => line,
            Some(Err(e)) => {
                eprintln!("{program}: reading standard input: {e}");
                return ExitCode::FAILURE;
            }
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.first().copied() {
            None => continue,
            Some(w) if w.starts_with('#') => continue,
            Some("quit" | "exit") => break,
            Some("help") => println!("{commands}\n  quit               leave"),
            Some(_) => {
                if let Err(e) = exec(pool, &words, &mut std::io::stdout().lock()) {
                    eprintln!("error: {e}");
                    failed = true;
                }
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<M: Map>(pool: &Pool<MapRoot<M>>, line: &str) -> std::result::Result<String, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let mut out = Vec::new();
        map_command(pool, &words, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    fn map_pool<M: Map>() -> Pool<MapRoot<M>> {
        let pool = Pool::<MapRoot<M>>::builder()
            .create_simulated(2 << 20)
            .unwrap();
        ensure_map(&pool).unwrap();
        pool
    }

    fn map_session<M: Map>() {
        let pool = map_pool::<M>();
        assert_eq!(run(&pool, "insert 2 20").unwrap(), "inserted 2 -> 20\n");
        assert_eq!(run(&pool, "insert 1 0x10").unwrap(), "inserted 1 -> 16\n");
        assert_eq!(
            run(&pool, "insert 2 21").unwrap(),
            "updated 2 -> 21 (was 20)\n"
        );
        assert_eq!(run(&pool, "get 2").unwrap(), "21\n");
        assert_eq!(run(&pool, "list").unwrap(), "1 16\n2 21\n");
        assert_eq!(run(&pool, "len").unwrap(), "2\n");
        assert_eq!(run(&pool, "remove 1").unwrap(), "removed 1 (value 16)\n");
        assert_eq!(run(&pool, "get 1").unwrap_err(), "key 1 not found");
        assert_eq!(run(&pool, "remove 1").unwrap_err(), "key 1 not found");
        assert!(run(&pool, "check").unwrap().starts_with("ok: 1 entries"));
        assert!(run(&pool, "insert 1").unwrap_err().contains("usage"));
        assert!(run(&pool, "insert x 1")
            .unwrap_err()
            .contains("not a number"));
        assert!(run(&pool, "frobnicate")
            .unwrap_err()
            .contains("unknown command"));
    }

    #[test]
    fn hashmap_commands() {
        map_session::<PHashMap<u64, u64>>();
    }

    #[test]
    fn btree_commands() {
        map_session::<PBTreeMap<u64, u64>>();
    }

    #[test]
    fn queue_commands() {
        let pool = Pool::<QueueRoot>::builder()
            .create_simulated(2 << 20)
            .unwrap();
        transaction(&pool, |tx| {
            let q = MessageQueue::create(tx)?;
            Ok(tx.root_mut().set_queue(q)?)
        })
        .unwrap();
        let run = |line: &str| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let mut out = Vec::new();
            queue_command(&pool, &words, &mut out).map(|()| String::from_utf8(out).unwrap())
        };
        assert_eq!(run("dequeue").unwrap_err(), "the queue is empty");
        assert_eq!(run("enqueue hello   world").unwrap(), "");
        assert_eq!(run("enqueue second").unwrap(), "");
        assert_eq!(run("peek").unwrap(), "hello world\n");
        assert_eq!(run("list").unwrap(), "hello world\nsecond\n");
        assert_eq!(run("len").unwrap(), "2\n");
        assert_eq!(run("dequeue").unwrap(), "hello world\n");
        assert!(run("check").unwrap().starts_with("ok: 1 messages"));
    }
}

//! SQLite (bundled) through rusqlite: one database file, `synchronous=FULL`, in WAL mode or
//! with the default rollback journal. Counters are rows `"c"` and `"c1"` of a table
//! `counters(k TEXT PRIMARY KEY, v INTEGER)`; the index is a table `idx(k INTEGER PRIMARY KEY,
//! v BLOB)`, keyed by the rowid. Every transaction is `BEGIN IMMEDIATE` .. `COMMIT` with cached
//! statements.
//!
//! One connection serves both threads of F4, behind a mutex: SQLite runs one writer at a time
//! in any case, and a second connection would wait for the first in SQLite's busy handler,
//! which sleeps for milliseconds, rather than on a lock.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::error::{verify, Result};
use crate::keys::{value_of, Value, VALUE_LEN};
use crate::run::{Counters, Described, Index};

/// The counters' keys: F1's is `"c"`, F4's second thread uses `"c1"`.
pub const COUNTER_KEYS: [&str; 2] = ["c", "c1"];

/// SQLite's journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journal {
    /// `journal_mode=WAL`.
    Wal,
    /// `journal_mode=DELETE`, the default rollback journal.
    Rollback,
}

impl Journal {
    /// The mode as `PRAGMA journal_mode` reports it.
    fn mode(self) -> &'static str {
        match self {
            Journal::Wal => "wal",
            Journal::Rollback => "delete",
        }
    }
}

/// A SQLite database.
#[derive(Debug)]
pub struct Sqlite {
    conn: Mutex<Connection>,
    journal: Journal,
}

/// `PRAGMA synchronous` reads back 2 for `FULL`.
const SYNCHRONOUS_FULL: u64 = 2;

impl Sqlite {
    /// Creates the database in `dir` with `journal` and `synchronous=FULL` (both read back
    /// to check), both counters at 0 and an empty index.
    pub fn create(dir: &Path, journal: Journal) -> Result<Self> {
        let conn = Connection::open(dir.join("bench.sqlite"))?;
        let mode: String = conn.query_row(
            &format!("PRAGMA journal_mode = {}", journal.mode()),
            [],
            |row| row.get(0),
        )?;
        verify(
            "journal mode is the one asked for",
            1,
            u64::from(mode == journal.mode()),
        )?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |row| row.get(0))?;
        verify("PRAGMA synchronous", SYNCHRONOUS_FULL, sync as u64)?;
        conn.execute_batch(
            "CREATE TABLE counters (k TEXT PRIMARY KEY NOT NULL, v INTEGER NOT NULL);
             CREATE TABLE idx (k INTEGER PRIMARY KEY, v BLOB NOT NULL);
             INSERT INTO counters (k, v) VALUES ('c', 0), ('c1', 0);",
        )?;
        Ok(Sqlite {
            conn: Mutex::new(conn),
            journal,
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The rowid of `key`: its bits as an i64 (a bijection, so any u64 key has a row of its own).
fn rowid(key: u64) -> i64 {
    key as i64
}

impl Described for Sqlite {
    fn settings(&self) -> String {
        format!("journal_mode={} synchronous=full", self.journal.mode())
    }
}

impl Counters for Sqlite {
    fn increment(&self, which: usize) -> Result<()> {
        let key = COUNTER_KEYS[which];
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let c: i64 = tx
                .prepare_cached("SELECT v FROM counters WHERE k = ?1")?
                .query_row(params![key], |row| row.get(0))?;
            tx.prepare_cached("UPDATE counters SET v = ?2 WHERE k = ?1")?
                .execute(params![key, c + 1])?;
        }
        tx.commit()?;
        Ok(())
    }

    fn get(&self, which: usize) -> Result<u64> {
        let c: i64 = self.conn().query_row(
            "SELECT v FROM counters WHERE k = ?1",
            params![COUNTER_KEYS[which]],
            |row| row.get(0),
        )?;
        Ok(c as u64)
    }
}

impl Index for Sqlite {
    fn insert_batch(&mut self, keys: &[u64]) -> Result<()> {
        let conn = self.conn.get_mut().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO idx (k, v) VALUES (?1, ?2)")?;
            for &key in keys {
                insert.execute(params![rowid(key), &value_of(key)[..]])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn key_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn()
            .query_row("SELECT count(*) FROM idx", [], |row| row.get(0))?;
        Ok(n as u64)
    }

    fn get(&self, key: u64) -> Result<Option<Value>> {
        let blob: Option<Vec<u8>> = self
            .conn()
            .query_row(
                "SELECT v FROM idx WHERE k = ?1",
                params![rowid(key)],
                |row| row.get(0),
            )
            .optional()?;
        Ok(blob.and_then(|b| <[u8; VALUE_LEN]>::try_from(b.as_slice()).ok()))
    }
}

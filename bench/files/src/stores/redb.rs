//! redb: one database file, every commit `Durability::Immediate` (redb's default, set on each
//! transaction so that no change of default can weaken it). Counters are keys `"c"` and
//! `"c1"` of a table `&str -> u64`; the index is a table `u64 -> [u8; 24]`.

use std::path::Path;

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};

use crate::error::Result;
use crate::keys::{value_of, Value};
use crate::run::{Counters, Described, Index};

const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
const INDEX: TableDefinition<u64, &[u8; 24]> = TableDefinition::new("index");
/// The counters' keys: F1's is `"c"`, F4's second thread uses `"c1"`.
pub const COUNTER_KEYS: [&str; 2] = ["c", "c1"];

/// A redb database.
#[derive(Debug)]
pub struct Redb {
    db: Database,
}

impl Redb {
    /// Creates the database in `dir`, with both counters at 0 and an empty index.
    pub fn create(dir: &Path) -> Result<Self> {
        let db = Database::create(dir.join("bench.redb"))?;
        let store = Redb { db };
        let txn = store.begin()?;
        {
            let mut counters = txn.open_table(COUNTERS)?;
            for key in COUNTER_KEYS {
                counters.insert(key, 0)?;
            }
            txn.open_table(INDEX)?;
        }
        txn.commit()?;
        Ok(store)
    }

    fn begin(&self) -> Result<WriteTransaction> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(Durability::Immediate)?;
        Ok(txn)
    }
}

impl Described for Redb {
    fn settings(&self) -> String {
        "durability=immediate".to_string()
    }
}

impl Counters for Redb {
    fn increment(&self, which: usize) -> Result<()> {
        let key = COUNTER_KEYS[which];
        let txn = self.begin()?;
        {
            let mut table = txn.open_table(COUNTERS)?;
            let c = table.get(key)?.map_or(0, |v| v.value());
            table.insert(key, c + 1)?;
        }
        txn.commit()?;
        Ok(())
    }

    fn get(&self, which: usize) -> Result<u64> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(COUNTERS)?;
        Ok(table.get(COUNTER_KEYS[which])?.map_or(0, |v| v.value()))
    }
}

impl Index for Redb {
    fn insert_batch(&mut self, keys: &[u64]) -> Result<()> {
        let txn = self.begin()?;
        {
            let mut table = txn.open_table(INDEX)?;
            for &key in keys {
                table.insert(key, &value_of(key))?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn key_count(&self) -> Result<u64> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(INDEX)?.len()?)
    }

    fn get(&self, key: u64) -> Result<Option<Value>> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(INDEX)?;
        Ok(table.get(key)?.map(|v| *v.value()))
    }
}

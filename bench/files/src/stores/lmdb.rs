//! LMDB through heed: one environment directory, default flags (no `NOSYNC`, no
//! `NOMETASYNC`: each commit syncs the data pages, then writes the meta page through an
//! `O_DSYNC` descriptor). Counters are keys `"c"` and `"c1"` of a database `str -> u64`; the
//! index is a database of big-endian u64 keys (so LMDB orders them numerically) to 24 bytes.

use std::path::Path;

use heed::byteorder::BE;
use heed::types::{Bytes, Str, U64};
use heed::{CommitOrAbort, Database, Env, EnvOpenOptions};

use crate::error::Result;
use crate::keys::{value_of, Value, VALUE_LEN};
use crate::run::{Counters, Described, Index};

/// The counters' keys: F1's is `"c"`, F4's second thread uses `"c1"`.
pub const COUNTER_KEYS: [&str; 2] = ["c", "c1"];
/// The map size: address space only, far above what any workload stores.
const MAP_SIZE: usize = 1 << 30;

type CounterDb = Database<'static, Str, U64<BE>>;
type IndexDb = Database<'static, U64<BE>, Bytes>;

/// An LMDB environment.
#[derive(Debug)]
pub struct Lmdb {
    env: Env,
    counters: CounterDb,
    index: IndexDb,
}

impl Lmdb {
    /// Creates the environment in `dir` (which must exist and be empty), with both counters at
    /// 0 and an empty index.
    pub fn create(dir: &Path) -> Result<Self> {
        // SAFETY: heed's hazard is another user of the same files changing the mapping under
        // this process. The directory was just made for this run alone, no other process or
        // environment in this one opens it, and nothing truncates or rewrites the files while
        // the environment is open.
        let env = unsafe {
            EnvOpenOptions::new()
                .map_size(MAP_SIZE)
                .max_dbs(2)
                .open(dir)?
        };
        let wtxn = env.write_txn()?;
        let (counters, index) = env
            .create_databases_and_commit(wtxn, |opener, wtxn| -> heed::Result<_> {
                let counters: Database<'_, Str, U64<BE>> =
                    opener.create_database(wtxn, Some("counters"))?;
                let index: Database<'_, U64<BE>, Bytes> =
                    opener.create_database(wtxn, Some("index"))?;
                for key in COUNTER_KEYS {
                    counters.put(wtxn, key, &0)?;
                }
                Ok(CommitOrAbort::<_, ()>::Commit((counters, index)))
            })?
            .unwrap_commit();
        Ok(Lmdb {
            env,
            counters,
            index,
        })
    }
}

impl Described for Lmdb {
    fn settings(&self) -> String {
        "env_flags=default".to_string()
    }
}

impl Counters for Lmdb {
    fn increment(&self, which: usize) -> Result<()> {
        let key = COUNTER_KEYS[which];
        let mut wtxn = self.env.write_txn()?;
        let c = self.counters.get(&wtxn, key)?.unwrap_or(0);
        self.counters.put(&mut wtxn, key, &(c + 1))?;
        wtxn.commit()?;
        Ok(())
    }

    fn get(&self, which: usize) -> Result<u64> {
        let rtxn = self.env.read_txn()?;
        Ok(self.counters.get(&rtxn, COUNTER_KEYS[which])?.unwrap_or(0))
    }
}

impl Index for Lmdb {
    fn insert_batch(&mut self, keys: &[u64]) -> Result<()> {
        let mut wtxn = self.env.write_txn()?;
        for &key in keys {
            self.index.put(&mut wtxn, &key, &value_of(key))?;
        }
        wtxn.commit()?;
        Ok(())
    }

    fn key_count(&self) -> Result<u64> {
        let rtxn = self.env.read_txn()?;
        Ok(self.index.len(&rtxn)?)
    }

    fn get(&self, key: u64) -> Result<Option<Value>> {
        let rtxn = self.env.read_txn()?;
        Ok(self
            .index
            .get(&rtxn, &key)?
            .and_then(|bytes| <[u8; VALUE_LEN]>::try_from(bytes).ok()))
    }
}

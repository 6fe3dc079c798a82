//! [`Media`]: a mapped pool, its geometry and its persistence domain, as one handle.

use crate::layout::log::LogKey;
use crate::layout::Geometry;
use crate::persist::Domain;
use crate::region::Region;

/// The mapped pool and how to make its bytes durable.
#[derive(Debug)]
pub(crate) struct Media {
    pub region: Region,
    pub geometry: Geometry,
    pub domain: Domain,
    /// The key of the pool's log entries, from its header.
    pub log_key: LogKey,
}

impl Media {
    /// Copies `bytes` to `offset` and flushes them (durable at the next fence).
    pub(crate) fn write_flush(&self, offset: u64, bytes: &[u8]) {
        self.region.write(offset, bytes);
        self.domain.flush(offset, bytes.len() as u64);
    }
}

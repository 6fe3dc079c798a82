//! What an open pool shares between its handle, its readers and its transactions: the media,
//! the heap, where it lives and the facts about it. Below both the pool and the transactions,
//! which each hold it.

use crate::error::Location;
use crate::heap::Heap;
use crate::layout::header::Header;
use crate::log::recovery::RecoveryReport;
use crate::map::PoolFile;
use crate::media::Media;
use crate::persist::{FlushMode, LogWrites, LogWritesChoice, PoolImage};

/// What keeps the pool's bytes alive: a mapped file or an in-memory image.
pub(crate) enum Backing {
    File(PoolFile),
    Memory(
        #[allow(dead_code, reason = "owned for its memory, used through raw pointers")] PoolImage,
    ),
}

/// Everything about an open pool that does not change while it is open, shared by readers and
/// the writer.
pub(crate) struct Shared {
    pub media: Media,
    pub heap: Heap,
    pub location: Location,
    pub info: PoolInfo,
    /// Dropped last: `media` points into it.
    pub _backing: Backing,
}

/// Facts about a pool, from its header and how it was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PoolInfo {
    /// Format version (major, minor).
    pub version: (u16, u16),
    /// The pool's UUID, as 16 bytes.
    pub uuid: [u8; 16],
    /// The layout name given at creation (may be empty).
    pub layout_name: String,
    /// Name of the root type.
    pub root_type: String,
    /// Size of the root object.
    pub root_size: u64,
    /// Pool offset of the root object.
    pub root_offset: u64,
    /// Layout fingerprint of the root type.
    pub root_fingerprint: u64,
    /// Size of the pool in bytes.
    pub pool_size: u64,
    /// Bytes of heap.
    pub heap_size: u64,
    /// Seconds since the Unix epoch when the pool was created.
    pub created_unix_secs: u64,
    /// Opens so far, this one included.
    pub run_id: u64,
    /// How this handle makes stores durable.
    pub flush_mode: FlushMode,
    /// How this handle writes its log lines (non-temporal stores or stores and flushes).
    pub log_writes: LogWrites,
    /// Why: the CPU table, a calibration, the builder, or the flush mode.
    pub log_writes_choice: LogWritesChoice,
    /// What recovery did when this handle opened the pool.
    pub recovery: RecoveryReport,
}

impl PoolInfo {
    pub(crate) fn from_header(
        h: &Header,
        flush_mode: FlushMode,
        (log_writes, log_writes_choice): (LogWrites, LogWritesChoice),
        recovery: RecoveryReport,
    ) -> PoolInfo {
        let root_type = crate::layout::header::decode_type(&h.root_type)
            .map(|t| t.name)
            .unwrap_or_default();
        PoolInfo {
            version: (h.major.get(), h.minor.get()),
            uuid: h.uuid,
            layout_name: h.layout_name(),
            root_type,
            root_size: h.root_size.get(),
            root_offset: h.root_offset.get(),
            root_fingerprint: h.root_fingerprint.get(),
            pool_size: h.pool_size.get(),
            heap_size: h.chunk_count.get() * crate::layout::heap::CHUNK_SIZE,
            created_unix_secs: h.created_unix_secs.get(),
            run_id: h.run_id.get(),
            flush_mode,
            log_writes,
            log_writes_choice,
            recovery,
        }
    }

    /// The UUID in its usual text form.
    pub fn uuid_string(&self) -> String {
        let u = &self.uuid;
        format!(
            "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]
        )
    }
}

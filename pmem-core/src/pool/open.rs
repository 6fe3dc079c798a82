//! Creating and opening pools: header choice and repair, type check, recovery, heap rebuild.

use std::path::Path;
use std::sync::Arc;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromZeros, IntoBytes};

use super::{Options, Pool};
use crate::error::{
    Corruption, Error, InvalidArgument, Location, Result, TypeDifference, TypeTableProblem,
};
use crate::heap::{Heap, HeapMeta};
use crate::layout::geometry::{
    HEADER_SIZE, LOG_OFFSET, LOG_SLOTS, TYPE_TABLE_OFFSET, TYPE_TABLE_SIZE,
};
use crate::layout::header::{
    decode_type, describe_difference, encode_type, features, Header, MAGIC, MAX_LAYOUT_NAME,
};
use crate::layout::heap::CHUNK_SIZE;
use crate::layout::log::LOG_SLOT_SIZE;
use crate::layout::types::TypeGraph;
use crate::layout::{Geometry, FORMAT_MAJOR, FORMAT_MINOR};
use crate::log::recovery::recover;
use crate::map::{read_at, PoolFile, Space};
use crate::media::Media;
use crate::persist::sim::FenceHook;
use crate::persist::{Domain, FlushMode, PoolImage, SimDomain};
use crate::persistent::Persistent;
use crate::region::Region;
use crate::shared::{Backing, PoolInfo, Shared};
use crate::tx::TxCore;

/// The header copy to use, and which copy (if any) must be rewritten from it.
struct Chosen {
    header: Header,
    repair: Option<u64>,
}

/// Picks a valid header copy from the first `2 * HEADER_SIZE` bytes of a pool.
fn choose_header(bytes: &[u8], location: &Location) -> Result<Chosen> {
    let [a, b] = Header::copies(bytes).expect("the caller read both header copies");
    let chosen = match (a.is_valid(), b.is_valid()) {
        (false, false) if a.magic != MAGIC && b.magic != MAGIC => {
            return Err(Error::BadMagic {
                location: location.clone(),
            })
        }
        (false, false) => {
            return Err(Error::HeaderCorrupt {
                location: location.clone(),
            })
        }
        (true, false) => Chosen {
            header: a,
            repair: Some(1),
        },
        (false, true) => Chosen {
            header: b,
            repair: Some(0),
        },
        (true, true) if a.as_bytes() == b.as_bytes() => Chosen {
            header: a,
            repair: None,
        },
        // A crash while bumping the run id left the copies different: the newer one wins.
        (true, true) if b.run_id.get() > a.run_id.get() => Chosen {
            header: b,
            repair: Some(0),
        },
        (true, true) => Chosen {
            header: a,
            repair: Some(1),
        },
    };
    let h = &chosen.header;
    if h.major.get() != FORMAT_MAJOR {
        return Err(Error::UnsupportedVersion {
            location: location.clone(),
            major: h.major.get(),
            minor: h.minor.get(),
            supported_major: FORMAT_MAJOR,
        });
    }
    if h.incompat_features.get() & !features::KNOWN_INCOMPAT != 0 || h.ro_compat_features.get() != 0
    {
        return Err(Error::UnsupportedFeatures {
            location: location.clone(),
            incompat: h.incompat_features.get(),
            ro_compat: h.ro_compat_features.get(),
        });
    }
    if !h.geometry_is_canonical() {
        return Err(Error::corrupt(location, Corruption::Geometry));
    }
    Ok(chosen)
}

/// The header to open a pool of `len` bytes with, from its first two pages: a valid copy, a
/// pool that fits in `len`, made for root type `R`. Nothing is written yet.
fn header_for<R: Persistent>(
    head: &[u8],
    len: u64,
    options: &Options,
    location: &Location,
) -> Result<Chosen> {
    let chosen = choose_header(head, location)?;
    let pool_size = chosen.header.pool_size.get();
    if len < pool_size {
        return Err(Error::Truncated {
            location: location.clone(),
            expected: pool_size,
            actual: len,
        });
    }
    check_type::<R>(&chosen.header, options, location)?;
    Ok(chosen)
}

/// Checks the pool was made for root type `R` (and layout name, if the opener names one).
fn check_type<R: Persistent>(
    header: &Header,
    options: &Options,
    location: &Location,
) -> Result<()> {
    if options.untyped {
        return Ok(());
    }
    if let Some(expected) = &options.layout {
        let found = header.layout_name();
        if *expected != found {
            return Err(Error::LayoutNameMismatch {
                location: location.clone(),
                expected: expected.clone(),
                found,
            });
        }
    }
    if header.root_fingerprint.get() == R::FINGERPRINT
        && header.root_size.get() == core::mem::size_of::<R>() as u64
    {
        return Ok(());
    }
    if header.root_fingerprint.get() == UNCLAIMED {
        let room = header.root_size.get();
        let size = core::mem::size_of::<R>() as u64;
        if root_area(size) == root_area(room) {
            return Ok(());
        }
        return Err(Error::RootTypeMismatch {
            location: location.clone(),
            expected: R::LAYOUT.name.to_string(),
            found: "an unclaimed root".to_string(),
            difference: Box::new(TypeDifference::RootRoom {
                room: root_area(room),
                needed: size,
            }),
        });
    }
    let (found, difference) = match decode_type(&header.root_type) {
        Some(stored) => (
            stored.name.clone(),
            describe_difference(&R::LAYOUT, &stored),
        ),
        None => ("an unreadable type".to_string(), TypeDifference::Unreadable),
    };
    Err(Error::RootTypeMismatch {
        location: location.clone(),
        expected: R::LAYOUT.name.to_string(),
        found,
        difference: Box::new(difference),
    })
}

fn root_fits<R: Persistent>(location: &Location) -> Result<()> {
    if core::mem::align_of::<R>() > crate::persistent::MAX_ALIGN {
        return Err(Error::invalid_argument(
            location,
            InvalidArgument::RootAlignment {
                type_name: R::LAYOUT.name,
                align: core::mem::align_of::<R>(),
                max: crate::persistent::MAX_ALIGN,
            },
        ));
    }
    Ok(())
}

fn flush_mode(options: &Options, dax: bool) -> FlushMode {
    if let Some(mode) = options.mode {
        return mode;
    }
    let forced = options.force_pmem || std::env::var("PMEM_FORCE_PMEM").is_ok_and(|v| v == "1");
    if dax || forced {
        FlushMode::best_cpu()
    } else {
        FlushMode::Msync
    }
}

fn check_mode(mode: FlushMode, location: &Location) -> Result<()> {
    if let Some(flush) = mode.line_flush() {
        if !flush.supported() {
            return Err(Error::invalid_argument(
                location,
                InvalidArgument::UnsupportedFlushMode { mode },
            ));
        }
    }
    if mode == FlushMode::Simulated {
        return Err(Error::invalid_argument(
            location,
            InvalidArgument::SimulatedModeForFile,
        ));
    }
    Ok(())
}

fn new_uuid() -> [u8; 16] {
    let mut uuid = [0u8; 16];
    // SAFETY: getrandom writes at most `len` bytes into the buffer we pass.
    let n = unsafe { libc::getrandom(uuid.as_mut_ptr() as *mut libc::c_void, uuid.len(), 0) };
    if n != uuid.len() as isize {
        // No entropy source: fall back to time and address bits, still unique enough to tell
        // pools apart.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        uuid[..8].copy_from_slice(&(t.as_nanos() as u64).to_le_bytes());
        let salt = &t as *const _ as u64 ^ std::process::id() as u64;
        uuid[8..].copy_from_slice(&salt.to_le_bytes());
    }
    uuid[6] = (uuid[6] & 0x0f) | 0x40; // version 4
    uuid[8] = (uuid[8] & 0x3f) | 0x80; // RFC 4122 variant
    uuid
}

/// The size the root area is made for: `R`'s, or the room an untyped create asks for.
fn root_size<R: Persistent>(options: &Options) -> u64 {
    options
        .root_area
        .unwrap_or(core::mem::size_of::<R>() as u64)
}

/// The root fingerprint of a pool created without a root type.
const UNCLAIMED: u64 = 0;

/// Bytes the root area takes for a root of `size` bytes.
fn root_area(size: u64) -> u64 {
    crate::layout::align_up(size.max(1), 4096).unwrap_or(u64::MAX)
}

/// Records `R` as the pool's root type in `header`.
fn claim_root<R: Persistent>(header: &mut Header) {
    header.root_fingerprint = U64::new(R::FINGERPRINT);
    header.root_size = U64::new(core::mem::size_of::<R>() as u64);
    header.root_type = encode_type(&R::LAYOUT, R::FINGERPRINT);
}

fn new_header<R: Persistent>(geometry: &Geometry, options: &Options) -> Header {
    let mut h = Header::new_zeroed();
    h.magic = MAGIC;
    h.major = U16::new(FORMAT_MAJOR);
    h.minor = U16::new(FORMAT_MINOR);
    h.header_size = U32::new(HEADER_SIZE as u32);
    h.uuid = new_uuid();
    h.log_key = crate::log::new_key();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    h.created_unix_secs = U64::new(now);
    h.run_id = U64::new(0);
    h.pool_size = U64::new(geometry.pool_size);
    h.log_offset = U64::new(LOG_OFFSET);
    h.log_slot_size = U64::new(LOG_SLOT_SIZE);
    h.log_slots = U64::new(LOG_SLOTS);
    h.root_offset = U64::new(geometry.root_offset);
    h.root_size = U64::new(geometry.root_size);
    h.root_fingerprint = U64::new(if options.untyped {
        UNCLAIMED
    } else {
        R::FINGERPRINT
    });
    h.chunk_table_offset = U64::new(geometry.chunk_table_offset);
    h.heap_offset = U64::new(geometry.heap_offset);
    h.chunk_size = U64::new(CHUNK_SIZE);
    h.chunk_count = U64::new(geometry.chunk_count);
    if let Some(name) = &options.layout {
        h.layout_name[..name.len()].copy_from_slice(name.as_bytes());
    }
    h.root_type = if options.untyped {
        let unclaimed = crate::persistent::TypeLayout {
            name: "",
            size: geometry.root_size as usize,
            align: 1,
            fields: &[],
        };
        encode_type(&unclaimed, UNCLAIMED)
    } else {
        encode_type(&R::LAYOUT, R::FINGERPRINT)
    };
    h.seal();
    h
}

fn check_layout_name(options: &Options, location: &Location) -> Result<()> {
    match &options.layout {
        Some(name) if name.len() > MAX_LAYOUT_NAME || name.contains('\0') => {
            Err(Error::invalid_argument(
                location,
                InvalidArgument::LayoutName {
                    name: name.clone(),
                    max: MAX_LAYOUT_NAME,
                },
            ))
        }
        _ => Ok(()),
    }
}

/// Checks every type reachable from `R` against the pool's type table, before anything is
/// written: the header check covers the root's own fields only, since a pointer field's
/// fingerprint names its target type but not the target's layout.
///
/// A table that fails its checksum is treated as absent, like an all-zero one (a pool no typed
/// program has opened): opening rewrites the table in place, so a crash can tear it, and a torn
/// record must not lock the pool. Nothing the safe API relies on comes from the table (every
/// object carries its own type fingerprint); it only lets open name a change early. A table
/// with a valid checksum must be well formed and agree with the program.
fn check_type_table<R: Persistent>(
    media: &Media,
    header: &Header,
    options: &Options,
    location: &Location,
) -> Result<()> {
    if options.untyped || header.root_fingerprint.get() == UNCLAIMED {
        return Ok(());
    }
    // SAFETY: the pool is being opened: nothing else reads or writes it.
    let bytes = unsafe { media.region.slice(TYPE_TABLE_OFFSET, TYPE_TABLE_SIZE) };
    let Some(table) = TypeGraph::decode(bytes) else {
        return Ok(());
    };
    table
        .validate()
        .map_err(|e| Error::corrupt(location, Corruption::TypeTable(e)))?;
    if table
        .types
        .first()
        .is_some_and(|t| t.fingerprint != header.root_fingerprint.get())
    {
        return Err(Error::corrupt(
            location,
            Corruption::TypeTable(TypeTableProblem::RootNotFirst),
        ));
    }
    table
        .check_program(R::INFO)
        .map_err(|d| Error::TypeMismatch {
            location: location.clone(),
            type_name: d.type_name,
            difference: d.difference,
        })
}

/// Records the types reachable from `R` in the pool's type table, unless it already holds them.
/// Run after [`check_type_table`] accepted the table, so what it adds are types the pool did not
/// record before.
fn write_type_table<R: Persistent>(media: &Media, location: &Location) -> Result<()> {
    let table = TypeGraph::of(R::INFO).encode();
    // SAFETY: the pool is being opened: nothing else reads or writes it.
    let current = unsafe { media.region.slice(TYPE_TABLE_OFFSET, TYPE_TABLE_SIZE) };
    if current != table.as_slice() {
        media.write_flush(TYPE_TABLE_OFFSET, &table);
        fence(media, location, "write back the type table")?;
    }
    Ok(())
}

/// Writes both header copies, one fence after each, so at most one is ever torn: a failed
/// write-back stops before the next copy is touched.
fn write_headers(
    media: &Media,
    header: &Header,
    copies: &[u64],
    location: &Location,
) -> Result<()> {
    for &copy in copies {
        media.write_flush(copy * HEADER_SIZE, header.as_bytes());
        fence(media, location, "write back the pool header")?;
    }
    Ok(())
}

/// What reserves the disk blocks of the pool in `backing`.
fn space_for(backing: &Backing, location: &Location, options: &Options) -> Space {
    match backing {
        Backing::File(file) => file.space(location.clone(), options.faults.clone()),
        Backing::Memory(_) => Space::memory(location.clone(), options.faults.clone()),
    }
}

/// Reserves the disk blocks of what create and open write before the heap exists: the header
/// copies, the log slots, the type table and the root (everything before the chunk table), or
/// with [`reserve_all`](super::PoolBuilder::reserve_all) the whole file. Done at every open as
/// well as at create, so a pool whose file lost its reservations gets them back; the heap
/// reserves its chunk table (once it has checked the chunk count) and the rest as it is used.
fn reserve_fixed(space: &Space, geometry: &Geometry, options: &Options) -> Result<()> {
    if options.reserve_all {
        space.reserve(
            0,
            geometry.pool_size,
            "reserve disk space for the whole pool (posix_fallocate)",
        )
    } else {
        space.reserve(
            0,
            geometry.chunk_table_offset,
            "reserve disk space for the pool's headers, logs and root (posix_fallocate)",
        )
    }
}

/// A fence of create or open, whose failure fails the create or open: nothing after it may
/// rely on what it should have made durable. (The file is left for the next open, whose
/// recovery is idempotent.)
fn fence(media: &Media, location: &Location, operation: &'static str) -> Result<()> {
    media.domain.fence_checked().map_err(|source| Error::Io {
        location: location.clone(),
        operation,
        source,
    })
}

/// Creates a pool over a fresh, zero-filled mapping.
fn create_on<R: Persistent>(
    backing: Backing,
    base: *mut u8,
    size: u64,
    mode: FlushMode,
    location: Location,
    options: &Options,
) -> Result<Pool<R>> {
    let geometry =
        Geometry::compute(size, root_size::<R>(options)).expect("size checked by the caller");
    let header = new_header::<R>(&geometry, options);
    let media = media_for(
        &backing,
        base,
        size,
        mode,
        (geometry, &header),
        Tracking::Simulated(None),
        options,
    );
    let space = space_for(&backing, &location, options);
    reserve_fixed(&space, &geometry, options)?;
    write_headers(&media, &header, &[0, 1], &location)?;
    finish_open(backing, media, space, header, location, options)
}

/// How an in-memory pool's persistence is modelled.
pub(crate) enum Tracking {
    /// The simulated domain, with an optional fence hook installed before the first fence.
    Simulated(Option<FenceHook>),
    /// No persisted image at all: for images that are only checked, never crashed again.
    Untracked,
}

fn media_for(
    backing: &Backing,
    base: *mut u8,
    len: u64,
    mode: FlushMode,
    (geometry, header): (Geometry, &Header),
    tracking: Tracking,
    options: &Options,
) -> Media {
    // SAFETY: `base .. base + len` is the mapping or image owned by `backing`, which the pool keeps
    // alive (declared after `media` in `Shared`, so dropped after it); both are page-aligned.
    let region = unsafe { Region::new(base, len) };
    let domain = match (backing, tracking) {
        (Backing::Memory(_), Tracking::Simulated(hook)) => {
            // SAFETY: as above; the image is page-aligned and pool sizes are multiples of 8.
            let sim = unsafe { SimDomain::new(base, len as usize) };
            sim.set_hook(hook);
            Domain::simulated(sim)
        }
        // SAFETY: as above; eADR mode only fences, which any memory allows.
        (Backing::Memory(_), Tracking::Untracked) => unsafe {
            Domain::new(base, len, FlushMode::Eadr)
        },
        // SAFETY: as above.
        (Backing::File(_), _) => unsafe { Domain::new(base, len, mode) },
    };
    let mut domain = domain;
    if let Some(log_writes) = options.log_writes {
        domain.set_log_writes(log_writes);
    }
    if let Some(plan) = &options.faults {
        domain.add_faults(plan.clone());
    }
    Media {
        region,
        geometry,
        domain,
        log_key: header.log_key(),
    }
}

/// The common tail of create and open: bump the run id, recover, rebuild the heap, retire logs.
fn finish_open<R: Persistent>(
    backing: Backing,
    media: Media,
    space: Space,
    mut header: Header,
    location: Location,
    options: &Options,
) -> Result<Pool<R>> {
    if !options.untyped && header.root_fingerprint.get() == UNCLAIMED {
        claim_root::<R>(&mut header);
    }
    header.run_id = U64::new(header.run_id.get().wrapping_add(1));
    // This version's transactions log their writes as `DATA` entries and inline in commit
    // records: an older pool is upgraded before the first one, so that an older reader refuses
    // it rather than misreads it.
    header.incompat_features =
        U64::new(header.incompat_features.get() | features::REDO_WRITES | features::INLINE_WRITES);
    header.seal();
    write_headers(&media, &header, &[0, 1], &location)?;
    if !options.untyped {
        write_type_table::<R>(&media, &location)?;
    }
    // A file with every block allocated needs no reservation (and its heap no watermark).
    let all_reserved = options.reserve_all || space.is_whole();
    let reserve = |end| match all_reserved {
        true => Ok(()),
        false => space.reserve(0, end, "reserve disk space for recovery (posix_fallocate)"),
    };
    let (report, next_gen) =
        recover(&media, reserve).map_err(|failure| failure.into_error(&location))?;
    // Recovery's one fence: the pool is consistent on the media only if it succeeded.
    if let Some(source) = media.domain.take_failure() {
        return Err(Error::Io {
            location,
            operation: "write back the recovered pool",
            source,
        });
    }
    let meta = HeapMeta::new(media.region, media.geometry);
    let heap =
        Heap::open(meta, space, all_reserved).map_err(|failure| failure.into_error(&location))?;
    let info = PoolInfo::from_header(
        &header,
        media.domain.mode(),
        media.domain.log_writes(),
        report,
    );
    let shared = Arc::new(Shared {
        media,
        heap,
        location,
        info,
        _backing: backing,
    });
    let mut core = TxCore::new(Arc::clone(&shared), next_gen);
    if report != Default::default() || next_gen > 1 {
        core.close().map_err(|source| Error::Io {
            location: shared.location.clone(),
            operation: "retire the recovered logs",
            source,
        })?;
    }
    Ok(Pool::from_parts(shared, core))
}

/// Opens a pool whose header area is `head` and whose bytes are at `base .. base + len`.
fn open_on<R: Persistent>(
    backing: Backing,
    base: *mut u8,
    len: u64,
    chosen: Chosen,
    options: &Options,
    location: Location,
    tracking: Tracking,
) -> Result<Pool<R>> {
    let dax = matches!(&backing, Backing::File(f) if f.is_dax());
    let mode = flush_mode(options, dax);
    let geometry = chosen.header.geometry();
    let media = media_for(
        &backing,
        base,
        len,
        mode,
        (geometry, &chosen.header),
        tracking,
        options,
    );
    let space = space_for(&backing, &location, options);
    reserve_fixed(&space, &geometry, options)?;
    check_type_table::<R>(&media, &chosen.header, options, &location)?;
    if let Some(copy) = chosen.repair {
        write_headers(&media, &chosen.header, &[copy], &location)?;
    }
    finish_open(backing, media, space, chosen.header, location, options)
}

/// What every create checks before touching anything: the layout name, that `R` can be a
/// root, and that `size` holds the pool.
fn check_create<R: Persistent>(size: u64, options: &Options, location: &Location) -> Result<()> {
    check_layout_name(options, location)?;
    root_fits::<R>(location)?;
    let minimum = Geometry::minimum_pool_size(root_size::<R>(options));
    if size < minimum {
        return Err(Error::TooSmall {
            location: location.clone(),
            size,
            minimum,
        });
    }
    Ok(())
}

pub(super) fn create_file<R: Persistent>(
    path: &Path,
    size: u64,
    options: &Options,
) -> Result<Pool<R>> {
    let location = Location::file(path);
    check_create::<R>(size, options, &location)?;
    // A detected mode is always supported; only a requested one can fail.
    if let Some(mode) = options.mode {
        check_mode(mode, &location)?;
    }
    let (file, temp) = PoolFile::create(path, size)?;
    let mode = flush_mode(options, file.is_dax());
    let base = file.base();
    match create_on::<R>(Backing::File(file), base, size, mode, location, options) {
        Ok(pool) => match &pool.shared()._backing {
            Backing::File(file) => file
                .publish(&temp, path, pool.shared().media.domain.faults())
                .map(|()| pool),
            Backing::Memory(_) => unreachable!("created on a file"),
        },
        Err(e) => {
            let _ = std::fs::remove_file(&temp);
            Err(e)
        }
    }
}

pub(super) fn open_file<R: Persistent>(path: &Path, options: &Options) -> Result<Pool<R>> {
    let location = Location::file(path);
    check_layout_name(options, &location)?;
    root_fits::<R>(&location)?;
    if let Some(mode) = options.mode {
        check_mode(mode, &location)?;
    }
    let (file, len) = PoolFile::open_unmapped(path)?;
    if len < 2 * HEADER_SIZE {
        return Err(Error::FileTooShort {
            location,
            size: len,
            needed: 2 * HEADER_SIZE,
        });
    }
    let mut head = vec![0u8; 2 * HEADER_SIZE as usize];
    read_at(&file, &mut head, 0, &location)?;
    let chosen = header_for::<R>(&head, len, options, &location)?;
    let pool_size = chosen.header.pool_size.get();
    let file = PoolFile::map_len(file, pool_size, path)?;
    let base = file.base();
    open_on(
        Backing::File(file),
        base,
        pool_size,
        chosen,
        options,
        location,
        Tracking::Untracked,
    )
}

pub(super) fn create_image<R: Persistent>(size: u64, options: &Options) -> Result<Pool<R>> {
    let location = Location::Memory;
    check_create::<R>(size, options, &location)?;
    let mut image = usize::try_from(size)
        .ok()
        .and_then(PoolImage::try_zeroed)
        .ok_or_else(|| {
            Error::invalid_argument(&location, InvalidArgument::ImageTooLarge { size })
        })?;
    let base = image.as_mut_ptr();
    create_on(
        Backing::Memory(image),
        base,
        size,
        FlushMode::Simulated,
        location,
        options,
    )
}

pub(super) fn open_image<R: Persistent>(
    mut image: PoolImage,
    options: &Options,
    tracking: Tracking,
    location: Location,
) -> Result<Pool<R>> {
    check_layout_name(options, &location)?;
    root_fits::<R>(&location)?;
    let len = image.len() as u64;
    if len < 2 * HEADER_SIZE {
        return Err(Error::FileTooShort {
            location,
            size: len,
            needed: 2 * HEADER_SIZE,
        });
    }
    let chosen = header_for::<R>(
        &image.as_bytes()[..2 * HEADER_SIZE as usize],
        len,
        options,
        &location,
    )?;
    let pool_size = chosen.header.pool_size.get();
    let base = image.as_mut_ptr();
    open_on(
        Backing::Memory(image),
        base,
        pool_size,
        chosen,
        options,
        location,
        tracking,
    )
}

//! A pool image opened without its Rust types: a private copy, recovered, with the type graph
//! its type table records and what its headers and logs showed before recovery.
//!
//! What [`check_file`](super::check_file) and [`check_image`](super::check_image) examine, and
//! what the `inspect` module's `Inspection` wraps to describe a pool to a person or a script.
//! It lives here, below `inspect`, so that the check never reaches up into the module that
//! presents its results.

use std::path::Path;

use super::{check_headers, read_pool_file, CheckReport, Problem};
use crate::error::{Corruption, Location, Result, TypeTableProblem};
use crate::heap::HeapMeta;
use crate::layout::geometry::{TYPE_TABLE_OFFSET, TYPE_TABLE_SIZE};
use crate::layout::types::TypeGraph;
use crate::persist::PoolImage;
use crate::pool::{Pool, PoolInfo};

/// A pool examined without its Rust types.
#[derive(Debug)]
pub(crate) struct Examined {
    /// The private copy, opened untyped and recovered.
    pub(crate) pool: Pool<()>,
    /// The pool's facts as the file has them (opening the copy counted as a run).
    pub(crate) info: PoolInfo,
    /// What the headers and logs showed before recovery.
    pub(crate) media: CheckReport,
    /// The types reachable from the root, as the type table records them.
    pub(crate) types: std::result::Result<TypeGraph, TypesProblem>,
}

/// Why an examined pool has no type graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TypesProblem {
    /// The pool was created without a root type and no typed program has opened it.
    Unclaimed,
    /// The type table is damaged.
    Damaged(Problem),
}

impl Examined {
    /// Maps `path` copy-on-write under a shared lock (held while this lives) and examines it.
    pub(crate) fn open(path: &Path) -> Result<Examined> {
        Self::from_image(read_pool_file(path)?, Location::file(path))
    }

    /// Examines `image`; `location` names it in errors.
    pub(crate) fn from_image(image: PoolImage, location: Location) -> Result<Examined> {
        let mut media = CheckReport::default();
        check_headers(image.as_bytes(), &mut media);
        let pool = Pool::<()>::builder()
            .untyped()
            .open_image_unchecked_at(image, location)?;
        let types = Self::read_types(&pool);
        let mut info = pool.info().clone();
        info.run_id = info.run_id.wrapping_sub(1);
        Ok(Examined {
            pool,
            info,
            media,
            types,
        })
    }

    /// The type graph of the pool's type table, checked to start at the root and validated.
    fn read_types(pool: &Pool<()>) -> std::result::Result<TypeGraph, TypesProblem> {
        let root = pool.info().root_fingerprint;
        if root == 0 {
            return Err(TypesProblem::Unclaimed);
        }
        // SAFETY: the pool is private to this examination and nothing writes it.
        let table = unsafe {
            pool.shared()
                .media
                .region
                .slice(TYPE_TABLE_OFFSET, TYPE_TABLE_SIZE)
        };
        match TypeGraph::decode(table) {
            Some(g)
                if g.types
                    .first()
                    .is_some_and(|t| t.fingerprint == root && t.size == pool.info().root_size) =>
            {
                match g.validate() {
                    Ok(()) => Ok(g),
                    Err(e) => Err(TypesProblem::Damaged(Problem::Corrupt(
                        Corruption::TypeTable(e),
                    ))),
                }
            }
            Some(_) => Err(TypesProblem::Damaged(Problem::Corrupt(
                Corruption::TypeTable(TypeTableProblem::RootNotFirst),
            ))),
            None => Err(TypesProblem::Damaged(Problem::TypeTableUnreadable)),
        }
    }

    /// The recovered copy's heap metadata.
    pub(crate) fn meta(&self) -> &HeapMeta {
        self.pool.shared().heap.meta()
    }
}

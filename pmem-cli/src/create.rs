//! `pmem create`: a new pool whose root the first typed program claims.

use std::io::Write;

use crate::fmt::{bytes_and_human, human};

use crate::{CreateArgs, Failure};

pub(crate) fn run(args: &CreateArgs, out: &mut impl Write) -> Result<u8, Failure> {
    let info = pmem_core::inspect::create_file(
        &args.file,
        args.size,
        args.layout.as_deref(),
        args.root_size,
        args.reserve_all,
    )
    .map_err(|e| Failure::from_error(e, &args.file))?;
    writeln!(out, "created pool file {}", args.file.display())?;
    writeln!(out, "  uuid        {}", info.uuid_string())?;
    writeln!(out, "  layout      {}", crate::info::layout_name(&info))?;
    writeln!(out, "  pool size   {}", bytes_and_human(info.pool_size))?;
    writeln!(out, "  heap        {}", bytes_and_human(info.heap_size))?;
    let disk = if args.reserve_all {
        "reserved for the whole file"
    } else {
        "reserved as the pool is used (the file is sparse until then)"
    };
    writeln!(out, "  disk space  {disk}")?;
    let (least, most) = crate::info::claimable(info.root_size);
    writeln!(
        out,
        "  root        unclaimed: the first program to open the pool claims it for its root type, which must be {least} to {most} bytes ({} of room)",
        human(most)
    )?;
    Ok(0)
}

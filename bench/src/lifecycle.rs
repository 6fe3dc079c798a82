//! Pool lifecycle: POOL-create, and W6 (open time with many live objects).

use std::time::Instant;

use pmem_core::Pool;

use crate::alloc::Obj64;
use crate::common::{destroy, env_u64, ns_since, per_op, report, Env, Result, Stats};

/// POOL-create: a timed `create` of a fresh pool file (the close is not timed).
pub fn run_create(env: &Env) -> Result<()> {
    let path = env.pool_path("create");
    let mut ns = Vec::new();
    let mut mode = String::new();
    for _ in 0..env.reps {
        let (pool, t) = env.create::<()>(&path)?;
        ns.push(t as f64);
        mode = pool.info().flush_mode.to_string();
        destroy(pool, &path);
    }
    let extra = format!(
        "pool_size={} flush_mode={mode} reserve={}",
        env.pool_size,
        env.reserve_name()
    );
    report("POOL-create", &ns, 1, &extra);
    Ok(())
}

/// W6: a pool with `W6_OBJS` live 64-byte objects is closed, then each rep times the open, the
/// first and second allocation, and the close.
pub fn run_w6(env: &Env) -> Result<()> {
    let nobj = env_u64("W6_OBJS", 1_000_000);
    let path = env.pool_path("w6");
    let (pool, _) = env.create::<()>(&path)?;
    let t0 = Instant::now();
    for _ in 0..nobj {
        pool.alloc(Obj64::ZERO)?;
    }
    let setup_ns = ns_since(t0);
    let mode = pool.info().flush_mode;
    drop(pool);

    let (mut open_ns, mut first_ns, mut second_ns, mut close_ns) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..env.reps {
        let a = Instant::now();
        let pool: Pool<()> = env.open(&path)?;
        let b = Instant::now();
        let o1 = pool.alloc(Obj64::ZERO)?;
        let c = Instant::now();
        let o2 = pool.alloc(Obj64::ZERO)?;
        let d = Instant::now();
        pool.free(o1)?;
        pool.free(o2)?;
        let e = Instant::now();
        drop(pool);
        let f = Instant::now();
        open_ns.push((b - a).as_nanos() as f64);
        first_ns.push((c - b).as_nanos() as f64);
        second_ns.push((d - c).as_nanos() as f64);
        close_ns.push((f - e).as_nanos() as f64);
    }
    // Verify the object count (untimed).
    let pool: Pool<()> = env.open(&path)?;
    let counted = pool.read(|r| r.objects::<Obj64>().count())? as u64;
    destroy(pool, &path);
    if counted != nobj {
        return Err(format!("w6: counted {counted} objects, expected {nobj}").into());
    }

    let (sf, ss, sc) = (
        Stats::of(&first_ns),
        Stats::of(&second_ns),
        Stats::of(&close_ns),
    );
    let setup_per_obj = per_op(setup_ns, nobj);
    let extra = format!(
        "live_objs={nobj} counted_objs={counted} first_alloc_ns_med={:.0} first_alloc_ns_min={:.0} first_alloc_ns_max={:.0} \
         second_alloc_ns_med={:.0} close_ns_med={:.0} setup_alloc_ns_per_obj={setup_per_obj:.1} pool_size={} flush_mode={mode} ptr_size={} reserve={}",
        sf.med, sf.min, sf.max, ss.med, sc.med, env.pool_size, core::mem::size_of::<pmem_core::PPtr<u64>>(), env.reserve_name()
    );
    report(&format!("W6-open-{nobj}objs"), &open_ns, 1, &extra);
    let total: Vec<f64> = open_ns.iter().zip(&first_ns).map(|(o, f)| o + f).collect();
    report(&format!("W6-open+first-alloc-{nobj}objs"), &total, 1, "");
    Ok(())
}

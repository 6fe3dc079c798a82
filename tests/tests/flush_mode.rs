//! The flush mode a pool reports, and what each mode costs in flushes and fences.

use pmem_core::{FlushMode, LogWrites, LogWritesChoice, Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    value: u64,
}

/// On this project's machines (x86-64 with clwb), forcing cache flushes on tmpfs gives clwb; an
/// ordinary file without the option gets msync. Elsewhere the best the CPU has is expected.
#[test]
fn forced_pmem_on_dev_shm_uses_the_best_cache_flush() {
    let dir = tempfile::tempdir_in("/dev/shm").expect("/dev/shm is tmpfs here");
    let path = dir.path().join("forced.pool");
    let pool = Pool::<Root>::builder()
        .force_pmem(true)
        .create(&path, 2 << 20)
        .unwrap();
    let expected = FlushMode::best_cpu();
    assert_eq!(pool.info().flush_mode, expected);
    println!("forced flush mode on /dev/shm: {}", pool.info().flush_mode);
    if std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| {
        c.lines()
            .any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "clwb"))
    }) {
        assert_eq!(pool.info().flush_mode, FlushMode::Clwb, "this CPU has clwb");
    }
    // A committed update flushes and fences (the second one: the data line the one before it
    // wrote in place is carried, since this one logs the counter again).
    pool.transaction(|tx| tx.root_mut().set_value(1)).unwrap();
    let before = pool.stats().flush;
    pool.transaction(|tx| tx.root_mut().set_value(3)).unwrap();
    let spent = pool.stats().flush.since(&before);
    assert_eq!(spent.fences, 1);
    // The commit record, holding the counter's new bytes, is the one log line; the counter is
    // a data line, carried by the next commit that logs it again (flushed at the first fence
    // that does not).
    match pool.info().log_writes {
        LogWrites::NonTemporal => {
            assert!(
                spent.lines_flushed == 0 && spent.lines_streamed == 1,
                "{spent:?}"
            )
        }
        _ => assert!(
            spent.lines_flushed == 1 && spent.lines_streamed == 0,
            "{spent:?}"
        ),
    }
    assert_eq!(spent.msyncs, 0);
    drop(pool);

    let plain = dir.path().join("plain.pool");
    let pool = Pool::<Root>::builder().create(&plain, 2 << 20).unwrap();
    if std::env::var("PMEM_FORCE_PMEM").is_ok_and(|v| v == "1") {
        assert!(pool.info().flush_mode.is_pmem());
    } else {
        assert_eq!(
            pool.info().flush_mode,
            FlushMode::Msync,
            "an ordinary (non-DAX) file uses msync"
        );
        let before = pool.stats().flush;
        pool.transaction(|tx| tx.root_mut().set_value(2)).unwrap();
        let spent = pool.stats().flush.since(&before);
        assert_eq!(spent.fences, 1);
        assert_eq!(
            spent.msyncs, 1,
            "msync mode syncs once per fence that has pages pending, whatever their number: {spent:?}"
        );
    }
}

#[test]
fn an_explicit_mode_is_used_as_given() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [FlushMode::Msync, FlushMode::Eadr, FlushMode::Clflush] {
        let path = dir.path().join(format!("{mode}.pool"));
        let pool = Pool::<Root>::builder()
            .flush_mode(mode)
            .create(&path, 2 << 20)
            .unwrap();
        assert_eq!(pool.info().flush_mode, mode);
        pool.transaction(|tx| tx.root_mut().set_value(3)).unwrap();
        drop(pool);
        let pool = Pool::<Root>::builder()
            .flush_mode(mode)
            .open(&path)
            .unwrap();
        assert_eq!(pool.read(|r| r.root().value).unwrap(), 3);
    }
    let pool = Pool::<Root>::builder().create_simulated(2 << 20).unwrap();
    assert_eq!(pool.info().flush_mode, FlushMode::Simulated);
}

/// The strategy the pool reports is the CPU table's where the CPU is in it, a calibration's
/// otherwise, and the builder's when asked; each way costs in lines what it says.
#[test]
fn log_writes_follow_the_cpu_table_or_the_builder() {
    let dir = tempfile::tempdir_in("/dev/shm").expect("/dev/shm is tmpfs here");
    let pool = Pool::<Root>::builder()
        .force_pmem(true)
        .create(dir.path().join("cpu.pool"), 2 << 20)
        .unwrap();
    let info = pool.info();
    println!(
        "log writes: {} ({:?})",
        info.log_writes, info.log_writes_choice
    );
    let cpu = pmem_core::CpuId::current();
    // The table: AMD Zen 4 streams its log lines, Intel family 6 model 0xcf flushes them.
    let zen4 = cpu.vendor == pmem_core::Vendor::Amd
        && cpu.family == 0x19
        && (0x10..=0x1f).contains(&cpu.model);
    let emerald_rapids =
        cpu.vendor == pmem_core::Vendor::Intel && cpu.family == 6 && cpu.model == 0xcf;
    let in_table = zen4 || emerald_rapids;
    match info.log_writes_choice {
        LogWritesChoice::CpuTable { cpu: seen } => {
            assert_eq!(seen, cpu);
            assert!(
                in_table,
                "only Zen 4 and model 0xcf are in the table: {cpu}"
            );
            let expected = if zen4 {
                LogWrites::NonTemporal
            } else {
                LogWrites::Flushed
            };
            assert_eq!(info.log_writes, expected);
        }
        LogWritesChoice::Calibrated {
            cpu: seen,
            flushed_ns,
            non_temporal_ns,
        } => {
            assert_eq!(seen, cpu);
            assert!(!in_table, "a CPU in the table is not calibrated");
            let streams = (non_temporal_ns as u64) * 10 < flushed_ns as u64 * 9;
            assert_eq!(info.log_writes == LogWrites::NonTemporal, streams);
        }
        other => panic!("a forced cache-flush pool chose by {other:?}"),
    }
    drop(pool);

    for (way, flushed, streamed) in [(LogWrites::Flushed, 1, 0), (LogWrites::NonTemporal, 0, 1)] {
        let pool = Pool::<Root>::builder()
            .force_pmem(true)
            .log_writes(way)
            .create(dir.path().join(format!("{way}.pool")), 2 << 20)
            .unwrap();
        assert_eq!(pool.info().log_writes, way);
        assert_eq!(pool.info().log_writes_choice, LogWritesChoice::Requested);
        pool.transaction(|tx| tx.root_mut().set_value(1)).unwrap();
        let before = pool.stats().flush;
        pool.transaction(|tx| tx.root_mut().set_value(2)).unwrap();
        let spent = pool.stats().flush.since(&before);
        assert_eq!(
            (spent.lines_flushed, spent.lines_streamed, spent.fences),
            (flushed, streamed, 1),
            "{way}: {spent:?}"
        );
        drop(pool);
        let pool = Pool::<Root>::builder()
            .force_pmem(true)
            .open(dir.path().join(format!("{way}.pool")))
            .unwrap();
        assert_eq!(pool.read(|r| r.root().value).unwrap(), 2);
    }

    // An ordinary file syncs pages: there is nothing to stream.
    let pool = Pool::<Root>::builder()
        .flush_mode(FlushMode::Msync)
        .log_writes(LogWrites::NonTemporal)
        .create(dir.path().join("msync.pool"), 2 << 20)
        .unwrap();
    assert_eq!(pool.info().log_writes, LogWrites::Flushed);
}

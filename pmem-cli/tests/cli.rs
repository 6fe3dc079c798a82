//! The `pmem` tool, run as a program: `create`, `info`, `dump` and `check` on fresh pools, on
//! pools written by a typed program, and on pools damaged in known ways.
//!
//! The damage is done by editing the file at offsets read from its header, following the
//! on-media format (header copies, log slots, chunk table, bitmap table), so each test says
//! exactly which structure it breaks.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use pmem_core::inspect::Inspection;
use pmem_core::{PPtr, PSlice, Persistent, Pool};

#[derive(Persistent)]
#[repr(C)]
struct Root {
    count: u64,
    head: PPtr<Node>,
    big: PPtr<Big>,
    values: PSlice<u64>,
    spare: [PPtr<Node>; 2],
}

#[derive(Persistent)]
#[repr(C)]
struct Node {
    value: u64,
    next: PPtr<Node>,
}

/// Larger than the largest size class (32 KiB): a span of whole chunks.
#[derive(Persistent)]
#[repr(C)]
struct Big {
    words: [u64; 5000],
}

const POOL_SIZE: u64 = 8 << 20;
const HEADER_SIZE: u64 = 4096;
const LOG_OFFSET: u64 = 2 * HEADER_SIZE;
const LOG_SLOT_SIZE: u64 = 64 * 1024;
const CHUNK_SIZE: u64 = 16 * 1024;
const CHUNK_ENTRY_SIZE: u64 = 16;
const BITMAP_BYTES: u64 = 128;
const CHUNK_RUN: u8 = 1;
const CHUNK_SPAN: u8 = 2;
const CHUNK_CONT: u8 = 3;
const LOG_COMMIT: u32 = 5;
const LOG_RETIRED: u32 = 6;

// ---------------------------------------------------------------------------------------------
// Running the tool
// ---------------------------------------------------------------------------------------------

/// Serialises the tests of this file. A pool's lock belongs to its open file, and a process
/// started by one test inherits every file open in this process until it executes the tool, so
/// a pool another test has just closed could still look locked. The tests are quick; running
/// them one at a time removes the race.
static SERIAL: Mutex<()> = Mutex::new(());

/// A test's directory, removed when the test ends; holds [`SERIAL`] meanwhile.
struct Scratch {
    dir: PathBuf,
    _serial: MutexGuard<'static, ()>,
}

impl Scratch {
    fn new(name: &str) -> Scratch {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("pmem-cli-tests")
            .join(format!("{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the test directory");
        Scratch {
            dir,
            _serial: serial,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// What one run of the tool did.
#[derive(Debug)]
struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts the exit status, showing everything the tool printed if it differs.
    fn expect(self, status: i32) -> Run {
        assert_eq!(
            self.status, status,
            "exit status\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    fn stdout_has(&self, text: &str) -> &Run {
        assert!(
            self.stdout.contains(text),
            "stdout lacks {text:?}:\n{}",
            self.stdout
        );
        self
    }

    fn stderr_has(&self, text: &str) -> &Run {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}:\n{}",
            self.stderr
        );
        self
    }
}

fn pmem<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_pmem"))
        .args(args)
        .env_remove("PMEM_FORCE_PMEM")
        .output()
        .expect("run the pmem binary");
    Run {
        status: out
            .status
            .code()
            .expect("pmem exited, not killed by a signal"),
        stdout: String::from_utf8(out.stdout).expect("UTF-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("UTF-8 stderr"),
    }
}

fn pmem_on(command: &str, file: &Path, more: &[&str]) -> Run {
    let mut args: Vec<&OsStr> = vec![OsStr::new(command), file.as_os_str()];
    args.extend(more.iter().map(OsStr::new));
    pmem(args)
}

// ---------------------------------------------------------------------------------------------
// A typed program, and the file's layout
// ---------------------------------------------------------------------------------------------

/// Writes a pool the way a program would: a large object, then three nodes pushed onto a list
/// in one transaction each, then a slice; closes it.
fn typed_pool(path: &Path) {
    let pool = Pool::<Root>::create(path, POOL_SIZE).expect("create the typed pool");
    pool.transaction(|tx| {
        let big = tx.alloc_zeroed::<Big>()?;
        tx.get_mut(big)?.words[0] = 0xb16;
        tx.root_mut().set_big(big)
    })
    .expect("allocate the large object");
    for value in [10u64, 20, 30] {
        pool.transaction(|tx| {
            let next = tx.root().head;
            let node = tx.alloc(Node { value, next })?;
            tx.root_mut().set_head(node)?;
            let count = tx.root().count;
            tx.root_mut().set_count(count + 1)
        })
        .expect("push a node");
    }
    pool.transaction(|tx| {
        let values = tx.alloc_slice(&[1u64, 2, 3, 4])?;
        tx.root_mut().set_values(values)
    })
    .expect("allocate the slice");
}

fn read_u64(bytes: &[u8], at: u64) -> u64 {
    let at = at as usize;
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

fn write_u64(bytes: &mut [u8], at: u64, value: u64) {
    let at = at as usize;
    bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

/// Where things are, from header copy A.
#[derive(Debug, Clone, Copy)]
struct Layout {
    root_offset: u64,
    chunk_table_offset: u64,
    heap_offset: u64,
    chunk_count: u64,
}

impl Layout {
    fn read(bytes: &[u8]) -> Layout {
        assert_eq!(&bytes[..8], b"PMEMPOOL");
        assert_eq!(read_u64(bytes, 144), CHUNK_SIZE, "chunk_size field");
        Layout {
            root_offset: read_u64(bytes, 104),
            chunk_table_offset: read_u64(bytes, 128),
            heap_offset: read_u64(bytes, 136),
            chunk_count: read_u64(bytes, 152),
        }
    }

    fn chunk_of(&self, offset: u64) -> u64 {
        (offset - self.heap_offset) / CHUNK_SIZE
    }

    fn chunk_offset(&self, chunk: u64) -> u64 {
        self.heap_offset + chunk * CHUNK_SIZE
    }

    fn entry(&self, chunk: u64) -> u64 {
        self.chunk_table_offset + chunk * CHUNK_ENTRY_SIZE
    }

    fn bitmap(&self, chunk: u64) -> u64 {
        let table =
            (self.chunk_table_offset + self.chunk_count * CHUNK_ENTRY_SIZE).next_multiple_of(64);
        table + chunk * BITMAP_BYTES
    }
}

/// Reads the file, lets `damage` edit it, writes it back.
fn damage(path: &Path, damage: impl FnOnce(&mut Vec<u8>, Layout)) {
    let mut bytes = fs::read(path).expect("read the pool file");
    let layout = Layout::read(&bytes);
    damage(&mut bytes, layout);
    fs::write(path, &bytes).expect("write the pool file");
}

/// The offset of the first node of the list (`root.head`).
fn head(bytes: &[u8], l: Layout) -> u64 {
    read_u64(bytes, l.root_offset + 8)
}

/// A healthy typed pool in `scratch`, checked healthy first.
fn healthy_typed_pool(scratch: &Scratch) -> PathBuf {
    let path = scratch.path("typed.pool");
    typed_pool(&path);
    pmem_on("check", &path, &[])
        .expect(0)
        .stdout_has("no problems found");
    path
}

/// Runs `check`, expects exit status 1 with `problem` named in a problem line of the report,
/// and returns the run.
fn check_finds(path: &Path, problem: &str) -> Run {
    let run = pmem_on("check", path, &[]).expect(1);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("problem:") && l.contains(problem)),
        "no problem line names {problem:?}:\n{}",
        run.stdout
    );
    run.stderr_has("damaged");
    run
}

// ---------------------------------------------------------------------------------------------
// create, info, dump
// ---------------------------------------------------------------------------------------------

#[test]
fn create_then_info_check_dump_a_fresh_pool() {
    let s = Scratch::new("fresh");
    let path = s.path("fresh.pool");
    pmem_on("create", &path, &["--size", "8M", "--layout", "demo"])
        .expect(0)
        .stdout_has("created pool file")
        .stdout_has("\"demo\"")
        .stdout_has("8388608 bytes (8.0 MiB)")
        .stdout_has("unclaimed");
    assert_eq!(fs::metadata(&path).unwrap().len(), 8 << 20);

    let info = pmem_on("info", &path, &[]).expect(0);
    info.stdout_has("format        version 3.2")
        .stdout_has("layout        \"demo\"")
        .stdout_has("root type     unclaimed")
        .stdout_has("1 to 4096 bytes")
        .stdout_has("live objects  0")
        .stdout_has("objects by type: none")
        .stdout_has("recovery      nothing to do")
        .stdout_has("flush mode    msync");

    pmem_on("check", &path, &[])
        .expect(0)
        .stdout_has("root is unclaimed")
        .stdout_has("no problems found");
    pmem_on("dump", &path, &[])
        .expect(0)
        .stdout_has("no objects");
    pmem_on("dump", &path, &["--root"])
        .expect(0)
        .stdout_has("unclaimed, 4096 bytes of room")
        .stdout_has("|................|");

    // The file is not touched by any of them.
    let before = fs::read(&path).unwrap();
    pmem_on("info", &path, &["--json"]).expect(0);
    pmem_on("check", &path, &[]).expect(0);
    assert!(
        fs::read(&path).unwrap() == before,
        "a read-only command changed the file"
    );

    // Create refuses an existing file, and a size below the minimum.
    pmem_on("create", &path, &["--size", "8M"])
        .expect(2)
        .stderr_has("already exists");
    pmem_on("create", &s.path("tiny.pool"), &["--size", "64K"])
        .expect(2)
        .stderr_has("minimum");
    pmem_on("create", &s.path("bad.pool"), &["--size", "8Q"])
        .expect(2)
        .stderr_has("unknown size suffix");
}

#[test]
fn create_reserves_disk_space_as_used_or_with_reserve_all_all_of_it() {
    use std::os::unix::fs::MetadataExt;
    let s = Scratch::new("reserve");
    let sparse = s.path("sparse.pool");
    pmem_on("create", &sparse, &["--size", "64M"])
        .expect(0)
        .stdout_has("reserved as the pool is used");
    let meta = fs::metadata(&sparse).unwrap();
    assert_eq!(meta.len(), 64 << 20);
    assert!(meta.blocks() * 512 <= 320 << 10, "{} blocks", meta.blocks());

    let full = s.path("full.pool");
    pmem_on("create", &full, &["--size", "64M", "--reserve-all"])
        .expect(0)
        .stdout_has("reserved for the whole file");
    assert!(fs::metadata(&full).unwrap().blocks() * 512 >= 64 << 20);
    pmem_on("check", &full, &[])
        .expect(0)
        .stdout_has("no problems found");
}

#[test]
fn a_created_pool_is_claimed_by_a_typed_program() {
    let s = Scratch::new("claim");
    let path = s.path("claim.pool");
    pmem_on(
        "create",
        &path,
        &["--size", "4M", "--layout", "list", "--root-size", "64"],
    )
    .expect(0);
    {
        let pool = Pool::<Root>::builder()
            .layout("list")
            .open(&path)
            .expect("a typed program claims the root");
        pool.alloc_into(
            Node {
                value: 7,
                next: PPtr::null(),
            },
            |tx, p| tx.root_mut().set_head(p),
        )
        .unwrap();
    }
    pmem_on("info", &path, &[])
        .expect(0)
        .stdout_has("root type     Root, 56 bytes")
        .stdout_has("layout        \"list\"")
        .stdout_has("Node");
    pmem_on("check", &path, &[])
        .expect(0)
        .stdout_has("1 reachable from the root")
        .stdout_has("no problems found");
}

#[test]
fn info_describes_a_typed_pool() {
    let s = Scratch::new("info");
    let path = healthy_typed_pool(&s);
    let run = pmem_on("info", &path, &[]).expect(0);
    let fingerprint = format!("{:#018x}", <Root as Persistent>::FINGERPRINT);
    run.stdout_has(&format!(
        "root type     Root, 56 bytes, fingerprint {fingerprint}"
    ))
    .stdout_has("layout        (none)")
    .stdout_has("live objects  5, 1 of them large")
    // The large object takes whole chunks: 40000 bytes round up to three.
    .stdout_has(&format!("{:>14}  Big", 3 * CHUNK_SIZE))
    .stdout_has(&format!("{:>10}  {:>14}  Node", 3, 48))
    .stdout_has("[u64]")
    .stdout_has("heap by size class")
    .stdout_has("PPtr<Node>")
    .stdout_has("PSlice<u64>")
    .stdout_has("+0x28   PPtr<Node> x2 (stride 8)")
    .stdout_has("recovery      nothing to do");
    // Created, then opened once by `typed_pool`'s create: the inspection does not count.
    run.stdout_has("run id        1 ");

    let json = pmem_on("info", &path, &["--json"]).expect(0);
    for needle in [
        "\"root\": {\n    \"claimed\": true,\n    \"type\": \"Root\",\n    \"size\": 56,",
        &format!("\"fingerprint\": \"{fingerprint}\""),
        "\"live_objects\": 5,",
        "\"large_objects\": 1,",
        "\"type\": \"Node\",\n      \"objects\": 3,\n      \"bytes\": 48",
        "\"needed\": false,",
        "\"ordinary_file\": \"msync\"",
    ] {
        json.stdout_has(needle);
    }
    assert_json_shape(&json.stdout);
}

/// A light structural check of JSON text: balanced brackets outside strings, valid escapes,
/// no trailing commas.
fn assert_json_shape(text: &str) {
    let mut depth: Vec<char> = Vec::new();
    let mut chars = text.chars().peekable();
    let mut last_significant = ' ';
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                loop {
                    match chars.next().expect("unterminated string") {
                        '\\' => {
                            let e = chars.next().expect("escape");
                            assert!("\"\\/bfnrtu".contains(e), "bad escape \\{e}");
                        }
                        '"' => break,
                        c => assert!(c >= ' ', "raw control character in a string"),
                    }
                }
                last_significant = '"';
                continue;
            }
            '{' | '[' => depth.push(c),
            '}' | ']' => {
                assert_ne!(last_significant, ',', "trailing comma");
                let open = depth.pop().expect("unbalanced");
                assert!(
                    (open, c) == ('{', '}') || (open, c) == ('[', ']'),
                    "mismatched {open}{c}"
                );
            }
            _ => {}
        }
        if !c.is_whitespace() {
            last_significant = c;
        }
    }
    assert!(depth.is_empty(), "unclosed brackets");
}

#[test]
fn dump_lists_and_shows_objects() {
    let s = Scratch::new("dump");
    let path = healthy_typed_pool(&s);
    let bytes = fs::read(&path).unwrap();
    let l = Layout::read(&bytes);
    let head = head(&bytes, l);

    let all = pmem_on("dump", &path, &[]).expect(0);
    all.stdout_has("5 objects")
        .stdout_has(&format!("{:#x}", head))
        .stdout_has("Big")
        .stdout_has("[u64]");
    let nodes = pmem_on("dump", &path, &["--type", "Node"]).expect(0);
    nodes.stdout_has("3 objects, 48 bytes");
    assert_eq!(
        nodes
            .stdout
            .lines()
            .filter(|l| l.ends_with("  Node"))
            .count(),
        3
    );
    assert!(!nodes.stdout.contains("Big"));
    pmem_on("dump", &path, &["--type", "Node", "--limit", "1"])
        .expect(0)
        .stdout_has("(2 not shown: --limit 1)");
    pmem_on("dump", &path, &["--type", "Nope"])
        .expect(2)
        .stderr_has("no type named \"Nope\"");

    // The head node is the last pushed: value 30, next pointing at the node holding 20.
    let next = read_u64(&bytes, head + 8);
    let object = pmem_on("dump", &path, &["--object", &format!("{head:#x}")]).expect(0);
    object
        .stdout_has(&format!("object at {head:#x}: Node, 16 bytes"))
        .stdout_has(&format!("{head:08x}  1e 00 00 00 00 00 00 00"))
        .stdout_has(&format!("-> {next:#x}: Node, 16 bytes"));
    // Decimal offsets work too.
    pmem_on("dump", &path, &["--object", &head.to_string()]).expect(0);
    pmem_on("dump", &path, &["--object", &format!("{:#x}", head + 8)])
        .expect(2)
        .stderr_has("no object starts at");

    let root = pmem_on("dump", &path, &["--root"]).expect(0);
    root.stdout_has(&format!("root at {:#x}: Root, 56 bytes", l.root_offset))
        .stdout_has(&format!("{:08x}  03 00 00 00 00 00 00 00", l.root_offset))
        .stdout_has(&format!("-> {head:#x}: Node, 16 bytes"))
        .stdout_has("PSlice<u64>")
        .stdout_has("(4 elements): [u64]")
        .stdout_has(&format!(
            "{:#x}    PPtr<Node>           -> null",
            l.root_offset + 0x30
        ));

    let big = read_u64(&bytes, l.root_offset + 16);
    let limited = pmem_on(
        "dump",
        &path,
        &["--object", &format!("{big:#x}"), "-n", "32"],
    )
    .expect(0);
    limited
        .stdout_has(&format!("{big:08x}  16 0b 00 00"))
        .stdout_has("more bytes not shown");
}

#[test]
fn info_and_check_say_what_recovery_would_do() {
    let s = Scratch::new("recovery");
    let path = s.path("crashed.pool");
    // A power cut at each fence of a workload whose last transaction allocates and links a
    // node: some images hold that transaction half done.
    let workload = |pool: &Pool<Root>| {
        pool.transaction(|tx| tx.root_mut().set_count(1))?;
        pool.transaction(|tx| {
            let node = tx.alloc(Node {
                value: 5,
                next: PPtr::null(),
            })?;
            tx.root_mut().set_head(node)?;
            tx.root_mut().set_count(2)
        })
    };
    let test = pmem_core::crash::CrashTest::new(POOL_SIZE);
    let (mut rolled_back, mut completed) = (false, false);
    // Fence indices count from the pool's creation; the workload's are a few dozen at most.
    // Random images too: the commit record torn with the redo entries whole is an uncommitted
    // transaction.
    let kinds = [pmem_core::crash::ImageKind::Everything]
        .into_iter()
        .chain((0..24).map(pmem_core::crash::ImageKind::Random));
    for (fence, kind) in (0..16).flat_map(|f| kinds.clone().map(move |k| (f, k))) {
        let Ok(image) = test.image_at::<Root>(workload, fence, kind) else {
            continue;
        };
        fs::write(&path, image.as_bytes()).unwrap();
        let recovery = Inspection::open(&path).unwrap().info().recovery;
        // Recovery ran on the inspection's private copy only.
        assert!(
            fs::read(&path).unwrap() == image.as_bytes(),
            "inspecting the image at fence {fence} changed the file"
        );
        if recovery.rolled_back && !rolled_back {
            rolled_back = true;
            pmem_on("info", &path, &[])
                .expect(0)
                .stdout_has("interrupted before it committed: opening the pool rolls it back");
            pmem_on("info", &path, &["--json"])
                .expect(0)
                .stdout_has("\"needed\": true,\n    \"rolls_back\": true,");
            pmem_on("check", &path, &[])
                .expect(0)
                .stdout_has("note: the last transaction was interrupted")
                .stdout_has("no problems found");
        } else if !recovery.rolled_back && recovery.redo_applied > 0 && !completed {
            completed = true;
            pmem_on("info", &path, &[])
                .expect(0)
                .stdout_has("opening the pool completes them");
            pmem_on("check", &path, &[]).expect(0);
        }
    }
    assert!(
        rolled_back,
        "no crash image held an uncommitted transaction"
    );
}

#[test]
fn an_inspection_keeps_programs_out_until_dropped() {
    let s = Scratch::new("inspection-lock");
    let path = healthy_typed_pool(&s);
    let inspection = Inspection::open(&path).unwrap();
    let err = Pool::<Root>::open(&path).unwrap_err();
    assert!(matches!(err, pmem_core::Error::PoolInUse { .. }), "{err:?}");
    // Readers share: a second inspection is fine.
    assert_eq!(
        Inspection::open(&path).unwrap().info().uuid,
        inspection.info().uuid
    );
    drop(inspection);
    Pool::<Root>::open(&path).unwrap();
}

// ---------------------------------------------------------------------------------------------
// check: healthy and damaged pools
// ---------------------------------------------------------------------------------------------

#[test]
fn check_finds_a_damaged_header_copy() {
    let s = Scratch::new("header");
    let path = healthy_typed_pool(&s);
    damage(&path, |bytes, _| {
        for b in &mut bytes[HEADER_SIZE as usize + 200..HEADER_SIZE as usize + 216] {
            *b ^= 0x5a;
        }
    });
    check_finds(&path, "header copy B");
    // The other copy still opens the pool: info works.
    pmem_on("info", &path, &[]).expect(0);
}

#[test]
fn check_reports_a_pool_with_both_header_copies_damaged() {
    let s = Scratch::new("headers");
    let path = healthy_typed_pool(&s);
    damage(&path, |bytes, _| {
        bytes[100] ^= 1;
        bytes[HEADER_SIZE as usize + 100] ^= 1;
    });
    check_finds(&path, "both copies of the pool header are corrupt");
    pmem_on("info", &path, &[])
        .expect(1)
        .stderr_has("both copies");
}

/// One entry of a log slot, found by its structure.
#[derive(Debug)]
struct LogEntry {
    pos: u64,
    kind: u32,
    len: u64,
}

/// The entries of the slot at `start` that belong to its first entry's generation, up to its
/// commit record.
fn log_entries(bytes: &[u8], start: u64) -> Vec<LogEntry> {
    let mut entries = Vec::new();
    let gen = read_u64(bytes, start + 8);
    let mut pos = start;
    while pos + 24 <= start + LOG_SLOT_SIZE {
        let word = read_u64(bytes, pos);
        // kind: the low byte (then a byte of flags and the kind's 16-bit auxiliary value)
        let (kind, len) = (word as u32 & 0xff, word >> 32);
        if !(1..=7).contains(&kind) || read_u64(bytes, pos + 8) != gen {
            break;
        }
        entries.push(LogEntry { pos, kind, len });
        if kind == LOG_COMMIT || kind == LOG_RETIRED || kind == 4 {
            break;
        }
        // Entries start on cache lines.
        pos += (24 + len).next_multiple_of(64);
    }
    entries
}

/// Damage in the log of a transaction that committed before the pool was closed: no recovery
/// reads that log again, and the next transaction's first entries can leave it looking like
/// this after a crash, so it is not a problem.
#[test]
fn check_accepts_damage_in_a_log_no_recovery_reads() {
    let s = Scratch::new("log");
    let path = healthy_typed_pool(&s);
    damage(&path, |bytes, _| {
        let slots = [LOG_OFFSET, LOG_OFFSET + LOG_SLOT_SIZE];
        let retired: Vec<bool> = slots
            .iter()
            .map(|&at| read_u64(bytes, at) as u32 & 0xff == LOG_RETIRED)
            .collect();
        assert_eq!(
            retired.iter().filter(|r| **r).count(),
            1,
            "a closed pool has one retired slot"
        );
        let slot = slots[retired.iter().position(|r| !r).unwrap()];
        let entries = log_entries(bytes, slot);
        assert!(
            entries.last().is_some_and(|e| e.kind == LOG_COMMIT),
            "the other slot holds the last committed transaction: {entries:?}"
        );
        assert!(entries.len() >= 2, "{entries:?}");
        // Not the first entry, so the slot still parses up to the damage.
        let victim = entries[1..]
            .iter()
            .find(|e| e.len > 0)
            .expect("an entry with a payload");
        bytes[(victim.pos + 24) as usize] ^= 0x01;
    });
    pmem_on("check", &path, &[]).expect(0);
}

/// A flipped byte among a committing transaction's entries, all written under its one fence:
/// recovery cannot tell it from a torn tail and drops the transaction whole, so `check` finds a
/// consistent pool and says the last transaction was interrupted.
#[test]
fn check_treats_damage_in_the_last_group_as_an_interrupted_transaction() {
    use pmem_core::crash::{CrashTest, ImageKind};
    #[derive(Persistent)]
    #[repr(C)]
    struct Fields {
        a: u64,
        b: u64,
        c: u64,
    }
    let workload = |pool: &Pool<Fields>| {
        pool.transaction(|tx| {
            tx.root_mut().set_a(1)?;
            tx.root_mut().set_c(3)?;
            tx.root_mut().set_b(2)
        })
    };
    let s = Scratch::new("interrupted");
    let test = CrashTest::new(4 << 20);
    let fences = CrashTest::new(4 << 20)
        .every_nth_fence(u64::MAX)
        .random_subsets(0)
        .run::<Fields>(workload, |_, _| Ok(()))
        .fences;
    // The image at the commit fence: three redo entries and the commit record, nothing in place.
    let image = (0..=fences)
        .filter_map(|f| {
            test.image_at::<Fields>(workload, f, ImageKind::Everything)
                .ok()
        })
        .find(|image| {
            Pool::<Fields>::builder()
                .open_image(image.clone())
                .is_ok_and(|p| p.info().recovery.redo_applied == 3)
        })
        .expect("an image at the commit fence");
    let mut bytes = image.as_bytes().to_vec();
    let slots = [LOG_OFFSET, LOG_OFFSET + LOG_SLOT_SIZE];
    let slot = (0..2)
        .max_by_key(|&i| read_u64(&bytes, slots[i] + 8))
        .unwrap();
    let entries = log_entries(&bytes, slots[slot]);
    assert_eq!(entries.len(), 4, "{entries:?}");
    bytes[(entries[1].pos + 32) as usize] ^= 1;
    let path = s.path("interrupted.pool");
    fs::write(&path, &bytes).unwrap();
    pmem_on("check", &path, &[])
        .expect(0)
        .stdout_has("note: the last transaction was interrupted")
        .stdout_has("no problems found");
}

#[test]
fn check_finds_a_cleared_allocation_bit() {
    let s = Scratch::new("bitmap");
    let path = healthy_typed_pool(&s);
    let bytes = fs::read(&path).unwrap();
    let head = head(&bytes, Layout::read(&bytes));
    // The slot size is the size class's unit, which the inspection knows.
    let unit = Inspection::open(&path)
        .unwrap()
        .object_at(head)
        .unwrap()
        .size;
    damage(&path, |bytes, l| {
        let mut run = l.chunk_of(head);
        let word = read_u64(bytes, l.entry(run));
        match word as u8 {
            CHUNK_RUN => {}
            CHUNK_CONT => run -= word >> 32,
            k => panic!("the head node's chunk has kind {k}"),
        }
        let slot = (head - l.chunk_offset(run)) / unit;
        let at = l.bitmap(run) + slot / 64 * 8;
        let bits = read_u64(bytes, at);
        assert_ne!(bits & 1 << (slot % 64), 0, "the node's bit is set");
        write_u64(bytes, at, bits & !(1 << (slot % 64)));
    });
    check_finds(&path, "not allocated");
}

#[test]
fn check_finds_a_dangling_root_pointer() {
    let s = Scratch::new("dangling");
    let path = healthy_typed_pool(&s);
    damage(&path, |bytes, l| {
        let last = l.chunk_count - 1;
        assert_eq!(read_u64(bytes, l.entry(last)), 0, "the last chunk is free");
        write_u64(bytes, l.root_offset + 8, l.chunk_offset(last));
    });
    let run = check_finds(&path, "dangling");
    run.stdout_has("free heap space");
}

#[test]
fn check_finds_a_pointer_to_another_type() {
    let s = Scratch::new("wrongtype");
    let path = healthy_typed_pool(&s);
    damage(&path, |bytes, l| {
        let big = read_u64(bytes, l.root_offset + 16);
        write_u64(bytes, l.root_offset + 8, big);
    });
    check_finds(&path, "holds another type");
}

#[test]
fn check_finds_overlapping_objects() {
    let s = Scratch::new("overlap");
    let path = healthy_typed_pool(&s);
    damage(&path, |bytes, l| {
        let big = read_u64(bytes, l.root_offset + 16);
        let first = l.chunk_of(big);
        let word = read_u64(bytes, l.entry(first));
        assert_eq!(word as u8, CHUNK_SPAN, "the large object is a span");
        let count = word >> 32;
        assert_eq!(count, 3);
        let after = read_u64(bytes, l.entry(first + count));
        assert_eq!(
            after as u8, CHUNK_RUN,
            "the chunk after the span starts a run (the list's nodes)"
        );
        // The span now claims the run's chunk as well.
        write_u64(
            bytes,
            l.entry(first),
            (word & 0xffff_ffff) | (count + 1) << 32,
        );
    });
    check_finds(&path, "overlapping");
}

// ---------------------------------------------------------------------------------------------
// Files that cannot be examined
// ---------------------------------------------------------------------------------------------

#[test]
fn a_pool_open_in_another_process_is_in_use() {
    let s = Scratch::new("inuse");
    let path = healthy_typed_pool(&s);
    let pool = Pool::<Root>::open(&path).expect("open the pool");
    for command in ["info", "check", "dump"] {
        pmem_on(command, &path, &[]).expect(2).stderr_has("in use");
    }
    drop(pool);
    pmem_on("check", &path, &[]).expect(0);
}

#[test]
fn files_that_are_not_pools() {
    let s = Scratch::new("notpool");
    let text = s.path("notes.txt");
    fs::write(&text, "just some text\n".repeat(10_000)).unwrap();
    let small = s.path("small.txt");
    fs::write(&small, "hello\n").unwrap();
    for file in [&text, &small] {
        for command in ["info", "check", "dump"] {
            let run = pmem_on(command, file, &[]).expect(2);
            run.stderr_has("not a pmem pool")
                .stderr_has(&file.display().to_string());
            assert!(run.stderr.starts_with("pmem: "), "{}", run.stderr);
        }
    }
    let missing = s.path("missing.pool");
    pmem_on("check", &missing, &[])
        .expect(2)
        .stderr_has("no such file")
        .stderr_has("missing.pool");
    let dir = s.path("a-directory");
    fs::create_dir(&dir).unwrap();
    pmem_on("info", &dir, &[])
        .expect(2)
        .stderr_has("Is a directory")
        .stderr_has("a-directory");
}

#[test]
fn usage_errors_exit_2_and_help_documents_exit_statuses() {
    let _s = Scratch::new("usage");
    pmem(["frobnicate"]).expect(2);
    pmem(["create", "x.pool"]).expect(2).stderr_has("--size");
    pmem(["dump", "x.pool", "--root", "--object", "0x10"]).expect(2);
    let help = pmem(["--help"]).expect(0);
    help.stdout_has("Exit status")
        .stdout_has("1  the pool is damaged");
    pmem(["check", "--help"])
        .expect(0)
        .stdout_has("Exit status");
}

/// `--help` and `-h` print usage and exit 0, and an unknown option is a usage error naming it;
/// none of them is taken for a pool file's name or creates anything.
#[test]
fn help_and_unknown_options_create_nothing() {
    let s = Scratch::new("help");
    let cwd = s.path("cwd");
    fs::create_dir(&cwd).unwrap();
    let run_in = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pmem"))
            .args(args)
            .current_dir(&cwd)
            .stdin(Stdio::null())
            .output()
            .expect("run the pmem binary")
    };
    for flag in ["--help", "-h"] {
        let out = run_in(&[flag]);
        assert!(out.status.success(), "pmem {flag}: {}", out.status);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("Usage:"), "pmem {flag}: {stdout}");
    }
    let out = run_in(&["--no-such-option", "x.pool"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--no-such-option"), "{stderr}");
    let left: Vec<_> = fs::read_dir(&cwd).unwrap().collect();
    assert!(left.is_empty(), "pmem created {left:?}");
}

/// Another program truncating the pool file while `pmem` reads it gets a message and exit
/// status 1 from the tool, not a silent death by `SIGBUS`. The tool is made to block on a full
/// standard output in the middle of a large hex dump; the file is truncated meanwhile, and the
/// rest of the dump reads pages past the new end.
#[test]
fn pmem_reports_a_file_truncated_while_it_reads() {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;

    #[derive(Persistent)]
    #[repr(C)]
    struct Data {
        data: PSlice<u64>,
    }

    let s = Scratch::new("shrinks");
    let path = s.path("shrinks.pool");
    let offset = {
        let pool = Pool::<Data>::create(&path, 64 << 20).unwrap();
        pool.transaction(|tx| -> pmem_core::Result<_> {
            // Distinct lines, which the hex dump does not collapse.
            let values: Vec<u64> = (0..2 << 20).collect();
            let data = tx.alloc_slice(&values)?;
            tx.root_mut().set_data(data)?;
            Ok(data.offset())
        })
        .unwrap()
    };
    let mut child = Command::new(env!("CARGO_BIN_EXE_pmem"))
        .arg("dump")
        .arg(&path)
        .arg("--object")
        .arg(offset.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 4096];
    if let Err(e) = stdout.read_exact(&mut first) {
        let out = child.wait_with_output().unwrap();
        panic!(
            "pmem dump did not get going ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The dump is under way and will soon block on the full pipe; shrink the file under it.
    std::thread::sleep(std::time::Duration::from_millis(100));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(1 << 20)
        .unwrap();
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.signal(),
        None,
        "pmem was killed by signal {:?}",
        out.status.signal()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("shrinks.pool") && err.contains("shrank while it was being read"),
        "{err}"
    );
}

#!/usr/bin/env bash
# compare.sh -- run the PMDK (libpmemobj 1.12) baseline harness and pmem-bench side by side,
# in the same environment, and print one line per workload:
#
#   NAME pmdk_ns=<median> pmem_ns=<median> ratio=<pmem/pmdk> fences_per_op=.. flushes_per_op=..
#
# (fences and flushes are pmem's, counted over the timed loop.) Workloads run interleaved,
# PMDK then pmem, so drift on a shared machine hits both sides alike.
#
# Knobs (env), as for shared/bench/pmdk/run.sh: N (1000000), REPS (5), W6_OBJS (1000000),
# POOL_DIR (/dev/shm), POOL_SIZE (1 GiB). Also:
#   PMDK_DIR     the C harness (default: ../shared/bench/pmdk beside this repository)
#   PMDK_BIN     where to build it (default: $TMPDIR/pmdk-bench-bin; PMDK_DIR may be read-only)
#   RESULTS_DIR  where the raw result lines are saved (default: a new temporary directory)
#   WORKLOADS    subset to run, e.g. "w1 w3" (default: create w1 w2 w3 w4 w5 w6 w7)
#   EXTRAS=1     also run W1, W3, W4 and W5 without cache flushes (fences kept: PMDK's
#                PMEM_NO_FLUSH=1, pmem's FLUSH_MODE=eadr) and W1 with clflushopt, tagged
#                [no-flush] and [clflushopt]: the software cost and the flush cost apart.
#
# Requires libpmemobj-dev and libpmem-dev (it installs nothing itself).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
PMDK_DIR="${PMDK_DIR:-$here/../../shared/bench/pmdk}"
PMDK_BIN="${PMDK_BIN:-${TMPDIR:-/tmp}/pmdk-bench-bin}"

export N="${N:-1000000}"
export REPS="${REPS:-5}"
export POOL_DIR="${POOL_DIR:-/dev/shm}"
export POOL_SIZE="${POOL_SIZE:-1073741824}"
W6_OBJS="${W6_OBJS:-1000000}"
WORKLOADS="${WORKLOADS:-create w1 w2 w3 w4 w5 w6 w7}"
EXTRAS="${EXTRAS:-0}"

die() {
	echo "compare.sh: $*" >&2
	exit 1
}

[ -f "$PMDK_DIR/pmdk_bench.c" ] || die "PMDK harness not found at $PMDK_DIR (set PMDK_DIR)"
if [ ! -e /usr/include/libpmemobj.h ] || [ ! -e /usr/include/libpmem.h ]; then
	die "libpmemobj-dev is missing; install it with: apt-get install -y libpmemobj-dev libpmem-dev"
fi
command -v cargo >/dev/null || die "cargo not found"

cleanup() { rm -f "$POOL_DIR"/pmdkbench_*.pool "$POOL_DIR"/pmembench_*.pool; }
trap cleanup EXIT
cleanup

# --- build both sides ---------------------------------------------------------------------
mkdir -p "$PMDK_BIN"
make -s -C "$PMDK_DIR" OUT="$(cd "$PMDK_BIN" && pwd)" "$(cd "$PMDK_BIN" && pwd)/pmdk_bench" >&2 ||
	die "building the PMDK harness failed"
pmdk="$PMDK_BIN/pmdk_bench"
cargo build --quiet --release -p pmem-bench --manifest-path "$repo/Cargo.toml" >&2 ||
	die "cargo build --release -p pmem-bench failed"
pmem="${CARGO_TARGET_DIR:-$repo/target}/release/pmem-bench"
[ -x "$pmem" ] || die "built binary not found at $pmem"

RESULTS_DIR="${RESULTS_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/pmem-compare.XXXXXX")}"
mkdir -p "$RESULTS_DIR"
raw_pmdk="$RESULTS_DIR/pmdk.txt"
raw_pmem="$RESULTS_DIR/pmem.txt"
: >"$raw_pmdk"
: >"$raw_pmem"

{
	echo "# date=$(date -u +%FT%TZ) host=$(uname -n) kernel=$(uname -r)"
	echo "# cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\"" \
		"vendor=$(grep -m1 'vendor_id' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
		"family=$(grep -m1 'cpu family' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" \
		"model=$(grep -m1 '^model[[:space:]]' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" nproc=$(nproc)
	echo "# libpmemobj=$(dpkg-query -W -f='${Version}' libpmemobj1 2>/dev/null || echo '?')" \
		"rustc=\"$(rustc --version)\" pmem=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
	echo "# POOL_DIR=$POOL_DIR POOL_SIZE=$POOL_SIZE REPS=$REPS N=$N W6_OBJS=$W6_OBJS" \
		"PMEM_IS_PMEM_FORCE=1(pmdk) force_pmem(pmem)"
} | tee "$RESULTS_DIR/env.txt"

failed=0
tag=""
# run SIDE WORKLOAD [KNOB=VALUE...]: one run of one side; its lines are saved and echoed with
# the side as prefix. A non-empty $tag is appended to each line's name, as NAME[tag].
run() {
	local side=$1 workload=$2 bin out lines
	shift 2
	if [ "$side" = pmdk ]; then bin=$pmdk out=$raw_pmdk; else bin=$pmem out=$raw_pmem; fi
	if lines=$(env "$@" "$bin" "$workload" 2>"$RESULTS_DIR/$side.err"); then
		[ -z "$tag" ] || lines=$(printf '%s\n' "$lines" | sed "s/^\([^ ]*\) /\1[$tag] /")
		printf '%s\n' "$lines" >>"$out"
		printf '%s\n' "$lines" | sed "s/^/$side: /"
	else
		failed=1
		[ -z "$lines" ] || printf '%s\n' "$lines" >>"$out"
		echo "$side: FAILED $workload $*: $(cat "$RESULTS_DIR/$side.err")"
	fi
}
# both WORKLOAD [KNOB=VALUE...]: PMDK then pmem, with the same knobs.
both() {
	run pmdk "$@" PMEM_IS_PMEM_FORCE=1
	run pmem "$@"
}

echo "## raw lines (also in $RESULTS_DIR)"
run pmdk flushinfo PMEM_IS_PMEM_FORCE=1
for w in $WORKLOADS; do
	case $w in
	create) both create N=1 ;;
	w6)
		both w6 W6_OBJS=0
		both w6 W6_OBJS="$W6_OBJS"
		;;
	*) both "$w" ;;
	esac
done
if [ "$EXTRAS" = 1 ]; then
	tag=no-flush
	for w in w1 w3 w4 w5; do
		run pmdk "$w" PMEM_IS_PMEM_FORCE=1 PMEM_NO_FLUSH=1
		run pmem "$w" FLUSH_MODE=eadr
	done
	tag=clflushopt
	run pmdk w1 PMEM_IS_PMEM_FORCE=1 PMEM_NO_CLWB=1
	run pmem w1 FLUSH_MODE=clflushopt
	tag=""
fi

# --- summary ------------------------------------------------------------------------------
names=(POOL-create W1-tx-update-8 W2-tx-update-256 W3-atomic-alloc-64 W3-atomic-free-64
	W4-tx-alloc-push-64 W5-hashmap-insert W5-hashmap-lookup
	W6-open-0objs W6-open+first-alloc-0objs "W6-open-${W6_OBJS}objs" "W6-open+first-alloc-${W6_OBJS}objs"
	W7-two-threads-tx-update-8
	"W1-tx-update-8[no-flush]" "W3-atomic-alloc-64[no-flush]" "W3-atomic-free-64[no-flush]"
	"W4-tx-alloc-push-64[no-flush]" "W5-hashmap-insert[no-flush]" "W5-hashmap-lookup[no-flush]"
	"W1-tx-update-8[clflushopt]")
echo "## summary (ns per op, median of $REPS reps; ratio = pmem / pmdk, below 1 means pmem is faster)"
for name in "${names[@]}"; do
	awk -v name="$name" '
		function field(line, key,   n, parts, i) {
			n = split(line, parts, " ")
			for (i = 2; i <= n; i++)
				if (index(parts[i], key "=") == 1)
					return substr(parts[i], length(key) + 2)
			return ""
		}
		$1 == name { line[FILENAME == ARGV[1] ? 1 : 2] = $0 }
		END {
			if (!(1 in line) && !(2 in line)) exit
			a = field(line[1], "ns_per_op"); b = field(line[2], "ns_per_op")
			ratio = (a != "" && b != "" && a + 0 > 0) ? sprintf("%.2f", b / a) : "-"
			f = field(line[2], "fences_per_op"); l = field(line[2], "flushes_per_op")
			t = field(line[2], "streamed_per_op"); c = field(line[2], "cpu")
			printf "%-34s pmdk_ns=%s pmem_ns=%s ratio=%s fences_per_op=%s flushes_per_op=%s streamed_per_op=%s cpu=%s\n", name,
				a == "" ? "-" : a, b == "" ? "-" : b, ratio, f == "" ? "-" : f, l == "" ? "-" : l,
				t == "" ? "-" : t, c == "" ? "-" : c
		}' "$raw_pmdk" "$raw_pmem"
done | tee "$RESULTS_DIR/summary.txt"
echo "## raw lines saved in $RESULTS_DIR (pmdk.txt, pmem.txt, summary.txt)"
exit "$failed"

#!/usr/bin/env bash
# profile.sh -- instructions per operation of one workload's timed loop, pmem and PMDK, under
# callgrind, with pmem's costliest functions (exclusive instructions per op).
#
#   bench/profile.sh WORKLOAD [TOP]
#
# WORKLOAD: w1 | w2 | w3-alloc | w3-free | w4 | w5-insert | w5-lookup, and for the generic maps
# w5g-insert | w5g-lookup (PMDK column: W5's) | btree-insert | btree-get (no PMDK column).
# TOP: functions to list (20).
# Knobs (env): CG_N (ops, default 100000), POOL_SIZE (256 MiB), LOG_WRITES (nt), PMDK_DIR, PMDK_BIN as for
# compare.sh. Instruction counts are deterministic, so one rep is enough; they do not show the
# time spent waiting for flushes and fences (use compare.sh and perf for that). Under valgrind the
# CPU looks older, so both sides flush with clflush: compare counts only with counts.
#
# Requires valgrind (apt-get install -y valgrind) and, for the PMDK column, libpmemobj-dev.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
PMDK_DIR="${PMDK_DIR:-$here/../../shared/bench/pmdk}"
PMDK_BIN="${PMDK_BIN:-${TMPDIR:-/tmp}/pmdk-bench-bin}"
CG_N="${CG_N:-100000}"
export POOL_DIR="${POOL_DIR:-/dev/shm}"
# Under valgrind the CPU is not the host's (it reports an Intel family 6 part), so a pool would
# calibrate its log writes with valgrind's timing and the count would depend on the outcome:
# pin the way, non-temporal by default (what the measured AMD Zen 4 uses); LOG_WRITES=flushed
# counts the other way.
export LOG_WRITES="${LOG_WRITES:-nt}"
export POOL_SIZE="${POOL_SIZE:-268435456}"
workload="${1:?usage: profile.sh w1|w2|w3-alloc|w3-free|w4|w5-insert|w5-lookup|w5g-insert|w5g-lookup|btree-insert|btree-get [TOP]}"
top="${2:-20}"

# workload -> binary argument, pmem loop function, PMDK function to count inclusively
case $workload in
w1) arg=w1 pmem_fn='*::w1_loop' pmdk_fn=w1_loop ;;
w2) arg=w2 pmem_fn='*::w2_loop' pmdk_fn=w2_loop ;;
w3-alloc) arg=w3 pmem_fn='*::w3_alloc_loop' pmdk_fn=pmemobj_alloc ;;
w3-free) arg=w3 pmem_fn='*::w3_free_loop' pmdk_fn=pmemobj_free ;;
w4) arg=w4 pmem_fn='*::w4_loop' pmdk_fn=w4_loop ;;
w5-insert) arg=w5 pmem_fn='*::w5_insert_loop' pmdk_fn=w5_insert_loop ;;
w5-lookup) arg=w5 pmem_fn='*::w5_lookup_loop' pmdk_fn=w5_lookup_loop ;;
w5g-insert) arg=w5g pmem_fn='*::w5g_insert_loop' pmdk_fn=w5_insert_loop ;;
w5g-lookup) arg=w5g pmem_fn='*::w5g_lookup_loop' pmdk_fn=w5_lookup_loop ;;
btree-insert) arg=btree pmem_fn='*::btree_insert_loop' pmdk_fn=- ;;
btree-get) arg=btree pmem_fn='*::btree_get_loop' pmdk_fn=- ;;
*)
	echo "profile.sh: unknown workload $workload" >&2
	exit 2
	;;
esac

command -v valgrind >/dev/null || {
	echo "profile.sh: valgrind is missing; install it with: apt-get install -y valgrind" >&2
	exit 1
}
tmp="$(mktemp -d "${TMPDIR:-/tmp}/pmem-profile.XXXXXX")"
cleanup() { rm -rf "$tmp" "$POOL_DIR"/pmdkbench_*.pool "$POOL_DIR"/pmembench_*.pool; }
trap cleanup EXIT

cargo build --quiet --release -p pmem-bench --manifest-path "$repo/Cargo.toml" >&2
pmem="${CARGO_TARGET_DIR:-$repo/target}/release/pmem-bench"

# cg OUT TOGGLE BINARY ARG...: callgrind over the toggled function only; prints total Ir.
cg() {
	local out=$1 toggle=$2
	shift 2
	N=$CG_N REPS=1 valgrind --tool=callgrind --toggle-collect="$toggle" \
		--callgrind-out-file="$out" "$@" >/dev/null 2>"$out.err" || {
		echo "profile.sh: callgrind run failed, see:" >&2
		cat "$out.err" >&2
		exit 1
	}
	awk '/^summary:/ {print $2}' "$out"
}

ir_pmem=$(cg "$tmp/pmem.out" "$pmem_fn" "$pmem" "$arg")
line="$workload N=$CG_N pmem_Ir_per_op=$(awk -v t="$ir_pmem" -v n="$CG_N" 'BEGIN {printf "%.1f", t / n}')"
if [ "$pmdk_fn" = - ]; then
	line="$line pmdk_Ir_per_op=- (no PMDK counterpart)"
elif [ -e /usr/include/libpmemobj.h ] && [ -f "$PMDK_DIR/pmdk_bench.c" ]; then
	mkdir -p "$PMDK_BIN"
	make -s -C "$PMDK_DIR" OUT="$(cd "$PMDK_BIN" && pwd)" "$(cd "$PMDK_BIN" && pwd)/pmdk_bench" >&2
	ir_pmdk=$(PMEM_IS_PMEM_FORCE=1 cg "$tmp/pmdk.out" "$pmdk_fn" "$PMDK_BIN/pmdk_bench" "$arg")
	line="$line pmdk_Ir_per_op=$(awk -v t="$ir_pmdk" -v n="$CG_N" 'BEGIN {printf "%.1f", t / n}')"
else
	line="$line pmdk_Ir_per_op=- (libpmemobj-dev or the PMDK harness missing)"
fi
echo "$line"

# pmem's functions by exclusive Ir per op (inlined code is counted in the function it landed in).
echo "# pmem, exclusive Ir per op, top $top"
callgrind_annotate --inclusive=no --auto=no --threshold=100 "$tmp/pmem.out" 2>/dev/null |
	awk -v n="$CG_N" '
		/^ *[0-9,]+ +\( *[0-9.]+%\) +/ && !/PROGRAM TOTALS/ {
			ir = $1; gsub(",", "", ir)
			fn = $0
			sub(/^ *[0-9,]+ +\( *[0-9.]+%\) +/, "", fn)
			sub(/ \[[^]]*\]$/, "", fn)
			sub(/^[^:]*:/, "", fn)       # drop the source file
			sum[fn] += ir
		}
		END { for (f in sum) printf "%10.1f  %s\n", sum[f] / n, f }' |
	sort -rn | head -n "$top"

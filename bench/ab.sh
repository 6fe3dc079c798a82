#!/usr/bin/env bash
# ab.sh -- compare two pmem-bench binaries (say, a build of the base commit and one of a change)
# on the same workloads, interleaved round by round so that machine drift hits both alike, and
# print per result line the median over rounds of each side's median and the ratio new / base:
#
#   NAME base_ns=<median> new_ns=<median> ratio=<new/base> rounds=R
#
#   bench/ab.sh BASE_BIN NEW_BIN
#
# Knobs (env): WORKLOADS (w1 w2 w3 w4 w5 w6), ROUNDS (5), and pmem-bench's own N (300000),
# REPS (3), FLUSH_MODE, POOL_DIR, POOL_SIZE, W6_OBJS. Each round runs the two binaries in
# alternating order. Build a base binary with, for example:
#   git worktree add /tmp/base BASE && CARGO_TARGET_DIR=/tmp/base-target \
#     cargo build --release -p pmem-bench --manifest-path /tmp/base/Cargo.toml
set -euo pipefail

[ $# -eq 2 ] || {
	echo "usage: $0 BASE_BIN NEW_BIN" >&2
	exit 2
}
base=$1
new=$2
for b in "$base" "$new"; do
	[ -x "$b" ] || {
		echo "ab.sh: $b is not an executable" >&2
		exit 2
	}
done

export N="${N:-300000}"
export REPS="${REPS:-3}"
export W6_OBJS="${W6_OBJS:-1000000}"
WORKLOADS="${WORKLOADS:-w1 w2 w3 w4 w5 w6}"
ROUNDS="${ROUNDS:-5}"
out=$(mktemp -d "${TMPDIR:-/tmp}/pmem-ab.XXXXXX")

echo "# cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')\" nproc=$(nproc)" \
	"N=$N REPS=$REPS ROUNDS=$ROUNDS FLUSH_MODE=${FLUSH_MODE:-default}"
for r in $(seq 1 "$ROUNDS"); do
	for w in $WORKLOADS; do
		if [ $((r % 2)) -eq 1 ]; then order="base new"; else order="new base"; fi
		for side in $order; do
			if [ "$side" = base ]; then bin=$base; else bin=$new; fi
			"$bin" "$w" >>"$out/$side.txt"
		done
	done
done

# The median of each side's per-round medians, per result line name.
medians() {
	awk '{
		for (i = 2; i <= NF; i++)
			if (index($i, "ns_per_op=") == 1) print $1, substr($i, 11)
	}' "$1" | sort -k1,1 -k2,2g | awk '
		{ v[$1] = v[$1] " " $2; n[$1]++ }
		END {
			for (k in v) {
				split(substr(v[k], 2), a, " ")
				m = (n[k] % 2) ? a[(n[k] + 1) / 2] : (a[n[k] / 2] + a[n[k] / 2 + 1]) / 2
				print k, m, n[k]
			}
		}' | sort
}
join <(medians "$out/base.txt") <(medians "$out/new.txt") |
	awk '{ printf "%s base_ns=%s new_ns=%s ratio=%.3f rounds=%s\n", $1, $2, $4, $4 / $2, $3 }'
echo "# raw lines in $out"

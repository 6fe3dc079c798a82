#!/usr/bin/env bash
# files.sh -- the file workloads of shared/bench/files/README.md (F1, F2, F3, F4, F1-shm) on
# pmem, redb, LMDB (heed) and SQLite (WAL and rollback journal), every commit durable, in one
# go. Prints a header naming the CPU and the file system, then one line per workload and system:
#
#   F1 system=pmem tx_per_s=<median> syncs_per_tx=.. ratio_vs_pmem=.. [more fields]
#
#   tx_per_s       median over REPS of transactions per second (F4: both threads together)
#   syncs_per_tx   durability points per transaction, counted by strace: msync, fsync,
#                  fdatasync and sync_file_range calls, plus writes through an O_DSYNC or O_SYNC
#                  descriptor (LMDB's meta page), over a run of N transactions minus a run of 0
#   ratio_vs_pmem  tx_per_s / pmem's tx_per_s in the same workload (above 1: faster than pmem)
#   sync_calls_per_tx, dsync_writes_per_tx   the two parts of syncs_per_tx
#   msyncs_per_tx, fences_per_tx, lines_flushed_per_tx   pmem's own count (Pool::stats().flush)
#   all_tx_per_s   every rep's tx/s, in the order run
#
# Knobs (env):
#   DIR        disk directory for F1-F4 (default /var/tmp; must not be tmpfs)
#   SHM_DIR    tmpfs directory for F1-shm (default /dev/shm)
#   REPS       passes, systems interleaved in an order rotating by one each pass (default 3)
#   F1_TX F2_TX F3_TX F4_TX SHM_TX   transactions (F4: per thread): 10000 10000 100 5000 10000
#   F3_BATCH   keys per F3 transaction (default 1000)
#   WORKLOADS  subset, e.g. "F1 F3" (default: F1 F2 F3 F4 F1-shm)
#   SYSTEMS    subset (default: pmem pmem-btree redb lmdb sqlite-wal sqlite-rollback);
#              pmem-btree runs F2 and F3 only
#   STRACE=0   skip the strace counts (syncs_per_tx is then "-")
#   DSYNC_SYSTEMS  systems whose O_DSYNC writes are counted (default: all; a second traced run
#              each). Only LMDB opens such a descriptor; the others count 0 in every run so far
#   RESULTS_DIR  where the raw lines go (default: a new directory under $TMPDIR or /tmp)
#
# Quick run (about a minute): F1_TX=300 F2_TX=300 F3_TX=5 F4_TX=150 SHM_TX=2000 REPS=1 bench/files.sh
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
crate="$here/files"

DIR="${DIR:-/var/tmp}"
SHM_DIR="${SHM_DIR:-/dev/shm}"
REPS="${REPS:-3}"
F1_TX="${F1_TX:-10000}"
F2_TX="${F2_TX:-10000}"
F3_TX="${F3_TX:-100}"
F3_BATCH="${F3_BATCH:-1000}"
F4_TX="${F4_TX:-5000}"
SHM_TX="${SHM_TX:-10000}"
WORKLOADS="${WORKLOADS:-F1 F2 F3 F4 F1-shm}"
SYSTEMS="${SYSTEMS:-pmem pmem-btree redb lmdb sqlite-wal sqlite-rollback}"
STRACE="${STRACE:-1}"
DSYNC_SYSTEMS="${DSYNC_SYSTEMS:-$SYSTEMS}"

die() {
	echo "files.sh: $*" >&2
	exit 1
}

command -v cargo >/dev/null || die "cargo not found"
if [ "$STRACE" = 1 ] && ! command -v strace >/dev/null; then
	die "strace not found: apt-get install -y strace (or STRACE=0)"
fi
fstype() { df -T "$1" | awk 'NR == 2 { print $2 }'; }
fsdev() { df -T "$1" | awk 'NR == 2 { print $1 }'; }
[ "$(fstype "$DIR")" != tmpfs ] || die "DIR=$DIR is tmpfs; the file workloads want a disk"

nice -n 19 cargo build --quiet --release --manifest-path "$crate/Cargo.toml" >&2 ||
	die "cargo build --release --manifest-path $crate/Cargo.toml failed"
bin="${CARGO_TARGET_DIR:-$crate/target}/release/pmem-files-bench"
[ -x "$bin" ] || die "built binary not found at $bin"

# pmem's default mode on an ordinary file is the point of F1-F4 (F1-shm forces its own).
unset PMEM_FORCE_PMEM

RESULTS_DIR="${RESULTS_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/pmem-files.XXXXXX")}"
mkdir -p "$RESULTS_DIR"
# Every run's files go under these two directories of this script's own, removed at exit.
work="$(mktemp -d "$DIR/pmem-files.XXXXXX")"
shm_work="$(mktemp -d "$SHM_DIR/pmem-files.XXXXXX")"
trap 'rm -rf "$work" "$shm_work"' EXIT

# The disk's cost of one durable 4 KiB write now (dd, O_DSYNC, 200 writes): a shared disk's
# latency drifts, and every number below is a multiple of it.
sync_probe() {
	local f="$work/probe" secs
	sync -f "$work"
	secs="$(dd if=/dev/zero of="$f" bs=4k count=200 oflag=dsync 2>&1 |
		awk '/copied/ { for (i = 1; i < NF; i++) if ($(i + 1) == "s,") print $i }')"
	rm -f "$f"
	awk -v s="$secs" 'BEGIN { if (s != "") printf "%.3f", s * 1000 / 200; else print "?" }'
}

cpuinfo() { grep -m1 "^$1[[:space:]]*:" /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'; }
mount_opts() { awk -v m="$(df --output=target "$1" | tail -1)" '$2 == m { print $4 }' /proc/mounts | tail -1; }
dev_info() {
	local dev name
	dev="$(fsdev "$1")"
	name="$(basename "$dev")"
	local model rota
	model="$(cat "/sys/class/block/$name/device/model" 2>/dev/null | sed 's/ *$//' || true)"
	rota="$(cat "/sys/class/block/$name/queue/rotational" 2>/dev/null || echo '?')"
	case "$name" in vd*) model="${model:-virtio-blk}" ;; esac
	echo "dev=$dev dev_model=\"${model:-?}\" rotational=$rota"
}
{
	echo "# date=$(date -u +%FT%TZ) host=$(uname -n) kernel=$(uname -r) nproc=$(nproc)"
	vendor="$(cpuinfo vendor_id)"
	family="$(cpuinfo 'cpu family')"
	model="$(cpuinfo model)"
	printf '# cpu="%s" vendor=%s family=%s model=%s (%s-f%x-m%x)\n' "$(cpuinfo 'model name')" \
		"$vendor" "$family" "$model" \
		"$(case "$vendor" in AuthenticAMD) echo amd ;; GenuineIntel) echo intel ;; *) echo cpu ;; esac)" \
		"$family" "$model"
	echo "# fs=$(fstype "$DIR") dir=$DIR $(dev_info "$DIR") mount_opts=$(mount_opts "$DIR")"
	echo "# F1-shm: fs=$(fstype "$SHM_DIR") dir=$SHM_DIR"
	echo "# dsync_write_ms_before=$(sync_probe) (one 4 KiB O_DSYNC write on $DIR, mean of 200)"
	echo "# rustc=\"$(rustc --version)\" pmem=$(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo '?')" \
		"REPS=$REPS F1_TX=$F1_TX F2_TX=$F2_TX F3_TX=$F3_TX F3_BATCH=$F3_BATCH F4_TX=$F4_TX SHM_TX=$SHM_TX"
} | tee "$RESULTS_DIR/env.txt"

# --- what each workload runs --------------------------------------------------------------
dir_of() { case "$1" in F1-shm) echo "$shm_work" ;; *) echo "$work" ;; esac; }
args_of() {
	case "$1" in
	F1) echo "--tx $F1_TX" ;;
	F2) echo "--tx $F2_TX" ;;
	F3) echo "--tx $F3_TX --batch $F3_BATCH" ;;
	F4) echo "--tx $F4_TX" ;;
	F1-shm) echo "--tx $SHM_TX" ;;
	esac
}
total_tx() { case "$1" in F4) echo $((2 * F4_TX)) ;; *) set -- $(args_of "$1") && echo "$2" ;; esac; }
systems_of() {
	local s
	for s in $SYSTEMS; do
		case "$1:$s" in F2:pmem-btree | F3:pmem-btree | *:pmem | *:redb | *:lmdb | *:sqlite-*) echo "$s" ;; esac
	done
}
# One run, its files under the workload's directory; the directory's file system is synced
# first, outside the timing, so writeback (and discards) of the run before stay out of it.
run() { # workload system [args...]
	local w="$1" s="$2"
	shift 2
	sync -f "$(dir_of "$w")"
	DIR="$(dir_of "$w")" "$bin" "$w" "$s" "$@"
}

failed=0
# --- timed passes ---------------------------------------------------------------------------
for rep in $(seq 1 "$REPS"); do
	echo "# rep $rep dsync_write_ms=$(sync_probe)" | tee -a "$RESULTS_DIR/env.txt"
	for w in $WORKLOADS; do
		mapfile -t systems < <(systems_of "$w")
		n=${#systems[@]}
		[ "$n" -gt 0 ] || continue
		for i in $(seq 0 $((n - 1))); do
			s="${systems[$(((i + rep - 1) % n))]}"
			# shellcheck disable=SC2046
			if line="$(run "$w" "$s" $(args_of "$w"))"; then
				echo "$line" >>"$RESULTS_DIR/$w.$s.txt"
				echo "rep $rep: $line" >&2
			else
				echo "FAILED: $w $s (rep $rep)" >&2
				failed=1
			fi
		done
	done
done

# --- durability points, counted by strace over N transactions minus 0 ----------------------
sync_calls() { # workload system tx -> msync+fsync+fdatasync+sync_file_range calls
	local out="$RESULTS_DIR/strace-c.$1.$2.$3.txt"
	sync -f "$(dir_of "$1")"
	# shellcheck disable=SC2046
	DIR="$(dir_of "$1")" strace -f -c -o "$out" -e trace=msync,fsync,fdatasync,sync_file_range \
		"$bin" "$1" "$2" $(args_of "$1") --tx "$3" >/dev/null || return 1
	awk '$NF == "total" { print $4; found = 1 } END { if (!found) print 0 }' "$out"
}
dsync_writes() { # workload system tx -> writes through descriptors opened O_DSYNC / O_SYNC
	local out="$RESULTS_DIR/strace-w.$1.$2.$3.txt"
	sync -f "$(dir_of "$1")"
	# shellcheck disable=SC2046
	DIR="$(dir_of "$1")" strace -f -qq -s 0 -o "$out" -e signal=none \
		-e trace=open,openat,creat,close,write,pwrite64,writev,pwritev,pwritev2 \
		"$bin" "$1" "$2" $(args_of "$1") --tx "$3" >/dev/null || return 1
	awk '
		{ line = $0; sub(/^[0-9]+ +/, "", line) }
		line ~ /^(open|openat|creat)\(/ && line ~ /O_D?SYNC/ && line ~ /= [0-9]+$/ {
			n = split(line, a, " "); dsync[a[n]] = 1; next
		}
		line ~ /^close\(/ { fd = line; sub(/^close\(/, "", fd); sub(/\).*/, "", fd); delete dsync[fd]; next }
		line ~ /^(write|pwrite64|writev|pwritev|pwritev2)\(/ {
			fd = line; sub(/^[a-z0-9]+\(/, "", fd); sub(/,.*/, "", fd); if (fd in dsync) count++
		}
		END { print count + 0 }' "$out"
}
per_tx() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (n > 0) printf "%.2f", (a - b) / n; else print "-" }'; }

: >"$RESULTS_DIR/syncs.txt"
if [ "$STRACE" = 1 ]; then
	for w in $WORKLOADS; do
		tx="$(set -- $(args_of "$w") && echo "$2")"
		total="$(total_tx "$w")"
		for s in $(systems_of "$w"); do
			d1=0 d0=0
			case " $DSYNC_SYSTEMS " in *" $s "*) count_dsync=1 ;; *) count_dsync=0 ;; esac
			if c1="$(sync_calls "$w" "$s" "$tx")" && c0="$(sync_calls "$w" "$s" 0)" &&
				{ [ "$count_dsync" = 0 ] || { d1="$(dsync_writes "$w" "$s" "$tx")" &&
					d0="$(dsync_writes "$w" "$s" 0)"; }; }; then
				calls="$(per_tx "$c1" "$c0" "$total")"
				writes="$(per_tx "$d1" "$d0" "$total")"
				[ "$count_dsync" = 1 ] || writes="not_counted"
				all="$(per_tx $((c1 + d1)) $((c0 + d0)) "$total")"
				echo "$w $s $all $calls $writes" >>"$RESULTS_DIR/syncs.txt"
				echo "strace: $w $s syncs_per_tx=$all (calls $c1-$c0, O_DSYNC writes $d1-$d0, $total tx)" >&2
			else
				echo "FAILED: strace $w $s" >&2
				failed=1
			fi
		done
	done
fi

# --- summary --------------------------------------------------------------------------------
field() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { v = $2 } END { print v }'; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
summary="$RESULTS_DIR/summary.txt"
: >"$summary"
for w in $WORKLOADS; do
	pmem_med="-"
	[ -s "$RESULTS_DIR/$w.pmem.txt" ] && pmem_med="$(while read -r l; do echo "$l" | field tx_per_s; done <"$RESULTS_DIR/$w.pmem.txt" | median)"
	for s in $(systems_of "$w"); do
		raw="$RESULTS_DIR/$w.$s.txt"
		[ -s "$raw" ] || continue
		all="$(while read -r l; do echo "$l" | field tx_per_s; done <"$raw" | paste -sd, -)"
		med="$(echo "$all" | tr , '\n' | median)"
		ratio="$(awk -v a="$med" -v b="$pmem_med" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "-" }')"
		read -r _ _ syncs calls writes < <(awk -v w="$w" -v s="$s" '$1 == w && $2 == s' "$RESULTS_DIR/syncs.txt"; echo "- - - - -") || true
		last="$(tail -1 "$raw")"
		own=""
		for k in flush_mode msyncs_per_tx fences_per_tx lines_flushed_per_tx index durability env_flags journal_mode keys_per_tx; do
			v="$(echo "$last" | field "$k")"
			[ -z "$v" ] || own="$own $k=$v"
		done
		echo "$w system=$s tx_per_s=$med syncs_per_tx=${syncs:--} ratio_vs_pmem=$ratio" \
			"sync_calls_per_tx=${calls:--} dsync_writes_per_tx=${writes:--}$own reps=$REPS all_tx_per_s=$all" |
			tee -a "$summary"
	done
done
echo "# dsync_write_ms_after=$(sync_probe)" | tee -a "$RESULTS_DIR/env.txt"
echo "raw lines: $RESULTS_DIR" >&2
exit "$failed"

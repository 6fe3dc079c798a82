#!/usr/bin/env bash
# Coverage-guided fuzzing of pool open (with recovery), the deep check and the inspector.
#
#   fuzz/run.sh [seconds per target] [targets...]
#
# Builds the seed corpus (valid pools and interrupted-transaction images, 384 KiB), runs each
# target under cargo fuzz (nightly, AddressSanitizer) for the given time (default 60 s) on one
# core, and prints executions and coverage. A crash is left in fuzz/artifacts/<target>/; minimize
# it (`cargo +nightly fuzz tmin <target> <file>`) and commit it under fuzz/regressions/<target>/,
# which `cargo test -p pmem-tests --test hostile_files kept_inputs_pass` replays on stable.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(open check inspect)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$(pwd)/target}

cargo +nightly build --release --bin seeds -q
"$CARGO_TARGET_DIR"/release/seeds "$(pwd)/corpus"
# Inputs that failed before are seeds too: the fuzzer starts from what broke.
for t in "${targets[@]}"; do
    [ -d "regressions/$t" ] && cp regressions/"$t"/* "corpus/$t/" 2>/dev/null || true
done

cargo +nightly fuzz build -O
status=0
for t in "${targets[@]}"; do
    mkdir -p "artifacts/$t"
    log="artifacts/$t/last-run.log"
    echo "== $t: ${secs}s"
    # Images are up to 1 MiB; rss limit raised for the 1 MiB copies the targets make.
    if ! nice cargo +nightly fuzz run -O "$t" "corpus/$t" -- \
        -max_total_time="$secs" -max_len=1048576 -rss_limit_mb=4096 -timeout=20 \
        -print_final_stats=1 -artifact_prefix="artifacts/$t/" >"$log" 2>&1; then
        echo "   FAILED: see $log and artifacts/$t/"
        status=1
    fi
    grep -E "^#[0-9]+.*(DONE|pulse|NEW|REDUCE)" "$log" | tail -1 || true
    grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" "$log" || true
    grep -E "^(==[0-9]+==ERROR|thread .* panicked|SUMMARY)" "$log" | head -3 || true
done
exit $status

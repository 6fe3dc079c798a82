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
    # Fork mode goes on after a crash, so one run collects every failing input it finds.
    # Images are up to 1 MiB; the rss limit allows for the copies the targets make.
    before=$(ls "artifacts/$t" | grep -c '^crash-\|^timeout-\|^oom-' || true)
    nice cargo +nightly fuzz run -O "$t" "corpus/$t" -- \
        -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -max_total_time="$secs" -max_len=1048576 -rss_limit_mb=4096 -timeout=20 \
        -artifact_prefix="artifacts/$t/" >"$log" 2>&1 || true
    grep -E "^#[0-9]+: cov" "$log" | tail -1 || true
    after=$(ls "artifacts/$t" | grep -c '^crash-\|^timeout-\|^oom-' || true)
    if [ "$after" != "$before" ]; then
        echo "   $((after - before)) new failing inputs in artifacts/$t/ (log: $log):"
        grep -E "panicked at|ERROR: AddressSanitizer|ERROR: libFuzzer" "$log" | sort | uniq -c | head -10
        status=1
    fi
done
exit $status

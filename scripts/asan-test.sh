#!/usr/bin/env bash
# The test suite under AddressSanitizer (nightly).
#
#   scripts/asan-test.sh [extra cargo test arguments]
#
# `--target` is given explicitly so that RUSTFLAGS reach only the target code, not the proc
# macros and build scripts (an instrumented proc macro cannot be loaded by a non-instrumented
# compiler). Not run under ASan:
# - the compile-fail tests (`--test compile_fail`): trybuild runs cargo again to build each ui
#   case, with these flags and a fresh target dir; they test compiler diagnostics, not memory
#   safety, and the run would rebuild the workspace per case;
# - doctests: rustdoc would need the sanitizer flags and a sanitized std as well, and every
#   doctest is also covered by the unit and integration tests.
# Leak detection is on (the default): a leak is a finding too.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-gnu
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-target/asan}
export RUSTFLAGS="-Zsanitizer=address ${RUSTFLAGS:-}"
# allocator_may_return_null: tests ask for impossible pool sizes and expect a clean error.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_stack_use_after_return=1:abort_on_error=1:allocator_may_return_null=1}
tests=()
for f in tests/tests/*.rs; do
    name=$(basename "$f" .rs)
    [ "$name" = compile_fail ] && continue
    [ "$name" = lifecycle ] && continue
    tests+=(--test "$name")
done
# Unit tests of every crate, binaries, and every integration test but the compile-fail ones.
status=0
cargo +nightly test --no-fail-fast --target "$target" --workspace --lib --bins "$@" || status=1
cargo +nightly test --no-fail-fast --target "$target" -p pmem-tests "${tests[@]}" "$@" || status=1
# lifecycle.rs leaks guards and pools on purpose (what a leaked guard does is what it tests), so
# it runs without leak detection.
ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" cargo +nightly test --no-fail-fast --target "$target" \
    -p pmem-tests --test lifecycle "$@" || status=1
[ $status = 0 ] && echo "AddressSanitizer: the suite ran clean"
exit $status

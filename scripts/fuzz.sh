#!/usr/bin/env bash
# Builds the cargo-fuzz targets (fuzz/) and runs each for SECONDS (default 60), one at a time, on one
# core. Fails when a target crashes, hangs (> 10 s on one input) or runs out of memory (> 2 GiB),
# i.e. when libFuzzer exits nonzero or leaves a crash-/timeout-/oom- artifact in fuzz/artifacts/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (targets: wav safetensors configs tsv toml; default all)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). cargo-fuzz passes nightly-only flags
# (-Zsanitizer, -Cpasses=sancov-module), which the stable toolchain accepts with RUSTC_BOOTSTRAP=1.
# No sanitizer (-s none): the crates are safe Rust, and the CUDA emulator of aural-kernels is built
# with ThreadSanitizer, which cannot be combined with AddressSanitizer. The grown corpora stay in
# fuzz/corpus/<target>/ (only the seed_* and min_* files are committed); per-target logs go to
# fuzz/artifacts/<target>.log, whose end is printed when a target fails. A target that could not be
# built because the disk is full is a warning, not a failure (it is no finding in the code).
# fuzz/dicts/numbers.dict gives libFuzzer the integers at the edges of the
# types (2^32, 2^63, 2^64 − 1, …) that overflow size arithmetic; it rarely builds them by mutation.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(wav safetensors configs tsv toml)
export RUSTC_BOOTSTRAP=1
mkdir -p artifacts
failed=()
nospace=()
for t in "${targets[@]}"; do
    mkdir -p "artifacts/$t" "corpus/$t"
    before=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    echo "== $t: ${secs} s"
    rc=0
    cargo fuzz run -s none "$t" "corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 -dict=dicts/numbers.dict \
        >"artifacts/$t.log" 2>&1 || rc=$?
    after=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)|^#[0-9]+ +DONE' "artifacts/$t.log" || true
    if [ "$rc" -ne 0 ] && [ "$after" -eq "$before" ] && grep -q 'No space left on device' "artifacts/$t.log"; then
        # Not a finding: the machine's disk is full (the fuzz build needs ~1.5 GB beside the test build).
        echo "!! $t not fuzzed: the disk is full ($(df -h . | awk 'NR==2 {print $4}') free); the log's end:"
        tail -n 5 "artifacts/$t.log" | sed 's/^/   | /'
        nospace+=("$t")
    elif [ "$rc" -ne 0 ] || [ "$after" -gt "$before" ]; then
        echo "!! $t failed (exit $rc); see fuzz/artifacts/$t.log and fuzz/artifacts/$t/; the log's end:"
        grep -E 'panicked at|ERROR: libFuzzer|SUMMARY|Test unit written' "artifacts/$t.log" | head -5 | sed 's/^/   > /' || true
        tail -n 25 "artifacts/$t.log" | sed 's/^/   | /'
        failed+=("$t")
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: failures in ${failed[*]}"
    exit 1
fi
if [ ${#nospace[@]} -gt 0 ]; then
    echo "fuzz: warning: ${nospace[*]} not fuzzed (disk full); no finding in the others"
    exit 0
fi
echo "fuzz: ${targets[*]}: no crash, hang or out-of-memory in ${secs} s each"

#!/bin/sh
# Runs every cargo-fuzz target for SECONDS (default 600) two at a time, then minimises each grown
# corpus by edge coverage into fuzz/corpus-grown/TARGET (libFuzzer -merge=1 -use_counters=0, the
# committed, small form). Logs: fuzz/logs/ (not committed); summary: fuzz/logs/summary.txt.
# Built once first, then the built binaries run directly so edits elsewhere in the tree during the
# run do not trigger rebuilds. SANITIZER (default none) is cargo fuzz's -s: qmpcheck is safe Rust
# (#![deny(unsafe_code)]), and without ASan the targets run 4-6.5x more inputs per second
# (reports/perf.md); CI's short runs keep cargo fuzz's default, address.
#   [SANITIZER=address] fuzz/run-all.sh [SECONDS] [TARGET...]
set -u
cd "$(dirname "$0")"
secs=${1:-600}
[ $# -gt 0 ] && shift
targets=${*:-"decoder_split spec_legacy spec_hx spec_qapi spec_introspect emulator_session reply_validation"}
cargo +nightly fuzz build -O -s "${SANITIZER:-none}" || exit 1
bin=target/x86_64-unknown-linux-gnu/release
mkdir -p logs
run_one() {
  t=$1
  mkdir -p corpus/$t artifacts/$t corpus-grown/$t
  start=$(date +%s)
  "$bin/$t" -max_total_time="$secs" -rss_limit_mb=2048 -dict=dict/qmp.dict \
    -artifact_prefix=artifacts/$t/ corpus/$t corpus-seeds/$t corpus-grown/$t >logs/$t.log 2>&1
  rc=$?
  echo "$t rc=$rc seconds=$(( $(date +%s) - start )) artifacts=$(ls artifacts/$t | wc -l)" >>logs/summary.txt
  rm -rf corpus-grown/$t.new && mkdir corpus-grown/$t.new
  "$bin/$t" -merge=1 -use_counters=0 -rss_limit_mb=2048 corpus-grown/$t.new corpus-grown/$t corpus/$t \
    >logs/$t.cmin.log 2>&1 && rm -rf corpus-grown/$t && mv corpus-grown/$t.new corpus-grown/$t
}
set -- $targets
while [ $# -gt 0 ]; do
  run_one "$1" &
  a=$!
  if [ $# -gt 1 ]; then run_one "$2" & b=$!; wait $b; shift; fi
  wait $a
  shift
done

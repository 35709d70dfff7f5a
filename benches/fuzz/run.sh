#!/bin/sh
# exec/s of each cargo-fuzz target under libFuzzer, for reports/perf.md: builds the targets
# (release, debug info) with SANITIZER (default none; cargo fuzz's own default is address),
# then runs each for SECONDS (default 60), one at a time, from a copy of its committed corpus
# (fuzz/corpus-seeds + fuzz/corpus-grown) with the dictionary, and prints libFuzzer's final
# exec/s. Needs nightly and cargo-fuzz. The uninstrumented ceiling is `cargo bench --bench
# fuzz_props`.
#   benches/fuzz/run.sh [SECONDS] [SANITIZER] [TARGET...]
set -eu
cd "$(dirname "$0")/../../fuzz"
secs=${1:-60}
san=${2:-none}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] && shift
targets=${*:-"decoder_split spec_legacy spec_hx spec_qapi spec_introspect emulator_session reply_validation"}
cargo +nightly fuzz build -O -s "$san" >/dev/null
bin=target/x86_64-unknown-linux-gnu/release
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%-18s %10s %10s %8s\n' target exec/s runs corpus
for t in $targets; do
  mkdir -p "$work/$t" "$work/artifacts"
  cp corpus-seeds/"$t"/* corpus-grown/"$t"/* "$work/$t"/
  "$bin/$t" -max_total_time="$secs" -rss_limit_mb=2048 -dict=dict/qmp.dict \
    -artifact_prefix="$work/artifacts/" "$work/$t" >"$work/$t.log" 2>&1 || { tail -20 "$work/$t.log"; exit 1; }
  done_line=$(grep 'DONE' "$work/$t.log" | tail -1)
  execs=$(echo "$done_line" | sed -n 's/.*exec\/s: \([0-9]*\).*/\1/p')
  runs=$(echo "$done_line" | sed -n 's/^#\([0-9]*\).*/\1/p')
  corp=$(echo "$done_line" | sed -n 's/.*corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p')
  printf '%-18s %10s %10s %8s\n' "$t" "$execs" "$runs" "$corp"
done

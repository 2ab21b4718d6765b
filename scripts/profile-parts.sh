#!/usr/bin/env bash
# Where a block's time goes, per transaction and per part, for the sequential executor
# and for Block-STM on one worker: `perf record` of one `tos-blockstm bench` row (every
# block under Block-STM), split into parts by scripts/profile-parts.py.
#
#   scripts/profile-parts.sh [WORKLOAD] [REPEAT]     (default: p2p:1000 41)
#
# Needs `perf` (linux-tools) and permission to profile (perf_event_paranoid <= 2).
# A minute or two on 2 cores; the samples stay in $TMPDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
workload=${1:-p2p:1000}
repeat=${2:-41}
txs=10000
if ! command -v perf >/dev/null; then
  echo "profile-parts: perf is not installed; nothing measured" >&2
  exit 1
fi
cargo build --release --quiet
dir=$(mktemp -d)
if ! perf record -q -o "$dir/perf.data" -F 2000 --call-graph dwarf,16384 \
  ./target/release/tos-blockstm bench --workload "$workload" --threads 1 --txs "$txs" \
  --repeat "$repeat" --seed 7 --always-parallel >"$dir/bench.txt" 2>&1; then
  echo "profile-parts: the profiled bench failed:" >&2
  tail -5 "$dir/bench.txt" >&2
  exit 1
fi
if ! row=$(grep -E "^$workload +$txs +1 " "$dir/bench.txt"); then
  echo "profile-parts: no $workload row in the bench's output ($dir/bench.txt)" >&2
  exit 1
fi
seq_ms=$(awk '{print $4}' <<<"$row")
par_ms=$(awk '{print $5}' <<<"$row")
echo "bench --workload $workload --threads 1 --txs $txs --repeat $repeat --seed 7 --always-parallel"
echo "$row"
echo
perf script -i "$dir/perf.data" -F comm,tid,ip,sym 2>/dev/null |
  python3 scripts/profile-parts.py - --seq-ms "$seq_ms" --par-ms "$par_ms" --txs "$txs"
echo "(samples: $dir/perf.data)"

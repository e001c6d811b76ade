#!/bin/bash
# The whole suite N times in a row (default 3) from fresh clones of this repository's HEAD, while two
# CPU-bound processes run: how issue #14 checks that no test fails by chance on a loaded 2-core machine.
# Each run is `CI=true bash .ci/run` (set-up and every test) in a new clone beside this checkout (so that
# ../shared, when present, serves the cross-checks as it does here; they skip with a reason without it); a
# summary line per run goes to stdout, the full logs beside the clones.
set -u
runs=${1:-3}
repo=$(cd "$(dirname "$0")/.." && pwd)
base=$(dirname "$repo")/lob-stress-$$
python3 -c "while True: pass" & b1=$!
python3 -c "while True: pass" & b2=$!
trap 'kill $b1 $b2 2>/dev/null' EXIT
fails=0
for i in $(seq 1 "$runs"); do
  d=$base-run$i
  git clone -q "$repo" "$d"
  start=$(date +%s)
  (cd "$d" && CI=true bash .ci/run > "$base-run$i.log" 2>&1); rc=$?
  [ $rc -eq 0 ] || fails=$((fails + 1))
  echo "run $i: commit $(git -C "$d" rev-parse --short HEAD) rc=$rc $(( $(date +%s) - start )) s," \
       "load $(cut -d' ' -f1-3 /proc/loadavg): $(grep -E '^=+ .*(passed|failed)' "$base-run$i.log" | tail -1)"
done
echo "$runs runs, $fails failed (clones and logs: $base-run*)"
[ $fails -eq 0 ]

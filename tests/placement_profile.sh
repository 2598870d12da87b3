#!/bin/sh
# bench/placement_profile.py on constructed runs whose answer is known: the
# rounds split near and apart by the line round trip, the whole plan's and
# each node's median per side, the sums by binding, and --compare beside an
# earlier run; a file that is not such a run is refused (exit 2) without a
# traceback. Skips (77) without python3.
set -eu
PY=$(command -v python3) || { echo "SKIP: python3 is not installed"; exit 77; }
BENCH="${DLAS_SRCDIR:-$(dirname "$0")/..}/bench"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
"$PY" - "$T" <<'EOF2'
import json, sys
def rd(line, ms, conv, norm):
    return {"probe_line_ns": line, "probe_gflops": [100, 100], "ms": ms,
            "nodes": {"conv": [conv, "winograd"], "norm": [norm, "ref"], "pool": [0.5, "ref"]}}
# after: near medians whole 10, conv 4, norm 1; apart whole 13, conv 5, norm 3
after = [rd([50, 55], 9.0, 3.0, 0.9), rd([52, 60], 10.0, 4.0, 1.0), rd([51, 58], 11.0, 5.0, 1.1),
         rd([300, 320], 13.0, 5.0, 3.0), rd([310, 305], 12.0, 4.5, 2.0),
         rd([330, 340], 14.0, 5.5, 4.0),
         rd([55, 300], 99.0, 99.0, 99.0)]  # one probe near, one apart: left out
# before: near whole 11 (conv 4, norm 2), apart 15 (conv 5, norm 5)
before = [rd([50, 55], 11.0, 4.0, 2.0), rd([300, 320], 15.0, 5.0, 5.0)]
json.dump({"model": "m", "batch": 1, "rounds": after}, open(sys.argv[1] + "/after.json", "w"))
json.dump({"model": "m", "batch": 1, "rounds": before}, open(sys.argv[1] + "/before.json", "w"))
open(sys.argv[1] + "/bad.json", "w").write('{"rounds": [{"probe_line_ns": [50, 55], "ms": 1}]}')
EOF2
out=$("$PY" "$BENCH/placement_profile.py" --from "$T/after.json" --compare "$T/before.json")
echo "$out"
want() { echo "$out" | grep -qF -- "$1" || { echo "FAIL: no line with: $1"; exit 1; }; }
want "7 rounds, 3 near, 3 apart"
want "whole plan: near 10.000 ms, apart 13.000 ms, apart/near 1.300"
want "sum of the nodes' growth: 3.000 ms"
want "| ref | 1.500 | 3.500 | 2.33 |"
want "| winograd | 4.000 | 5.000 | 1.25 |"
want "| norm | ref | 1.000 | 3.000 | 3.00 |"
want "| near | 1, 3 | 11.000 -> 10.000 |"
want "winograd 4.000 -> 4.000, ref 2.500 -> 1.500"
want "| apart | 1, 3 | 15.000 -> 13.000 |"
want "| norm | ref, ref | 5.000 | 3.000 |"
# refused: not a run, and no file
for f in "$T/bad.json" "$T/missing.json"; do
    if "$PY" "$BENCH/placement_profile.py" --from "$f" > "$T/o" 2>&1; then
        echo "FAIL: $f accepted"; exit 1
    fi
    grep -q "error: " "$T/o" && ! grep -q Traceback "$T/o" || { cat "$T/o"; echo "FAIL: $f"; exit 1; }
done
echo "placement_profile: ok"

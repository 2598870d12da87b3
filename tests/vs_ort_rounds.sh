#!/bin/sh
# bench/vs_ort.py's choice of rounds on constructed rounds whose answer is
# known: a round is full only when every probe saw at least --full of the
# run's best FMA rate and a cache line's round trip within --near times the
# run's shortest; "apart" rounds are those whose every probe saw the threads
# apart; without round trips (one thread) only the FMA rate counts. Skips
# (77) without python3.
set -eu
PY=$(command -v python3) || { echo "SKIP: python3 is not installed"; exit 77; }
"$PY" - "${DLAS_SRCDIR:-$(dirname "$0")/..}/bench" <<'EOF2'
import sys
sys.path.insert(0, sys.argv[1])
import vs_ort  # the functions only: torch is imported in main()

def rd(name, gflops, line):
    return {"name": name, "probe_gflops": gflops, "probe_line_ns": line}

rounds = [
    rd("near", [100, 98, 99], [55, 60, 58]),
    rd("edge", [100, 100, 100], [55, 110, 80]),      # exactly 2x the shortest: near
    rd("mixed", [100, 100, 100], [55, 320, 60]),     # one probe saw them apart
    rd("apart", [100, 100, 100], [330, 500, 700]),
    rd("slow", [40, 100, 100], [55, 55, 55]),        # FMA rate lost
    rd("slow_apart", [40, 100, 100], [400, 400, 400]),
]
best = [100.0, 0.0, 55.0]
full = [r["name"] for r in vs_ort.full_rounds(rounds, best, 0.9, 2.0)]
assert full == ["near", "edge"], full
apart = [r["name"] for r in vs_ort.apart_rounds(rounds, best, 2.0)]
assert apart == ["apart", "slow_apart"], apart
# a looser --near takes the mixed round too
full = [r["name"] for r in vs_ort.full_rounds(rounds, best, 0.9, 6.0)]
assert full == ["near", "edge", "mixed"], full
# one thread: no round trips measured (best 0): the FMA rate alone decides
one = [rd("a", [100], [0.0]), rd("b", [50], [0.0])]
assert [r["name"] for r in vs_ort.full_rounds(one, [100.0, 0.0, 0.0], 0.9, 2.0)] == ["a"]
assert vs_ort.apart_rounds(one, [100.0, 0.0, 0.0], 2.0) == []
# the statistics over a subset
st = vs_ort.round_stats([{"dlas": 2.0, "ort": 4.0, "dlas_steal_pct": 0, "ort_steal_pct": 0},
                         {"dlas": 3.0, "ort": 4.0, "dlas_steal_pct": 1, "ort_steal_pct": 0}])
assert st["rounds_used"] == 2 and abs(st["ratio"] - 0.625) < 1e-12, st
# a row is judged against the whole run's best, again when a later model
# finds a better one: a model timed entirely apart has no full rounds then
class A:
    probe, full, near = True, 0.9, 2.0
far = [dict(rd("f%d" % i, [100, 100, 100], [300, 320, 310]), dlas=4.0, ort=6.8,
            dlas_steal_pct=0, ort_steal_pct=0) for i in range(3)]
row = {"rounds": far}
vs_ort.classify(row, [100.0, 0.0, 300.0], A)      # its own best: all "near"
assert row["full_rounds"] == 3 and row["apart_rounds"] == 0, row
vs_ort.classify(row, [100.0, 0.0, 55.0], A)       # the run's best, found later
assert row["full_rounds"] == 0 and row["full"] is None, row
assert row["apart_rounds"] == 3 and abs(row["apart"]["ratio"] - 4.0 / 6.8) < 1e-12, row
assert row["probe_best_line_ns"] == 55.0
print("vs_ort rounds: PASS")
EOF2

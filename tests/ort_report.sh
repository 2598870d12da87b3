#!/bin/sh
# bench/ort_report.py on constructed vs_ort.py runs whose answer is known:
# the later file's cell replaces the earlier one's, each cell is judged
# against its own goal (0.8 for the three small networks at batch 1, 1.0
# otherwise), --rounds full takes the "full" figures, names from the file
# reach the gnuplot script only through the whitelist, and damaged files
# are refused with the file and the row named. Skips (77) without python3.
set -eu
PY=$(command -v python3 || true)
if [ -z "$PY" ]; then
    echo "SKIP: python3 is not installed"
    exit 77
fi
SRC=${DLAS_SRCDIR:-$(dirname "$0")/..}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dlas-ort-report-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

"$PY" - <<'EOF'
import json

def row(model, batch, ratio, lo, hi, full=None):
    r = {"model": model, "batch": batch, "ratio": ratio, "ratio_lo": lo, "ratio_hi": hi,
         "dlas_ms": 10 * ratio, "ort_ms": 10.0, "dlas_spread": 0.05, "ort_spread": 0.04,
         "rounds": [{}] * 5}
    if full:
        r["full"] = dict(r, ratio=full, ratio_lo=full, ratio_hi=full)
        r["full_rounds"] = 3
    return r

evil = "evil\"'`touch PWNED` @x \\n $(touch PWNED2)"
json.dump({"rows": [row("resnet18", 1, 0.95, 0.9, 1.0), row("resnet50", 1, 0.97, 0.9, 1.1),
                    row(evil, 1, 0.5, 0.4, 0.6)]}, open("a.json", "w"))
# b.json's resnet18 b1 replaces a.json's; its full rounds differ
json.dump({"rows": [row("resnet18", 1, 0.79, 0.7, 0.85, full=0.82),
                    row("mobilenetv2", 16, 0.99, 0.95, 1.05)]}, open("b.json", "w"))
json.dump({"rows": [{"model": "resnet18", "batch": 1, "ratio": "fast"}]}, open("bad.json", "w"))
open("trunc.json", "w").write('{"rows": [')
EOF

"$PY" "$SRC/bench/ort_report.py" a.json b.json -o out/all > all.log
"$PY" "$SRC/bench/ort_report.py" a.json b.json -o out/full --rounds full > full.log

"$PY" - <<'EOF'
import csv
cells = {(r["model"], r["batch"]): r for r in csv.DictReader(open("out/all.csv"))}
assert len(cells) == 4, cells
r18 = cells[("resnet18", "1")]
assert float(r18["ratio"]) == 0.79 and r18["goal"] == "0.8" and r18["met"] == "1", r18
r50 = cells[("resnet50", "1")]
assert float(r50["ratio"]) == 0.97 and r50["goal"] == "1.0" and r50["met"] == "1", r50
mb = cells[("mobilenetv2", "16")]
assert mb["goal"] == "1.0" and mb["met"] == "1", mb
evil = [k for k in cells if k[0].startswith("evil")][0]
assert cells[evil]["goal"] == "" and cells[evil]["met"] == "", cells[evil]
full = {(r["model"], r["batch"]): r for r in csv.DictReader(open("out/full.csv"))}
f18 = full[("resnet18", "1")]
assert float(f18["ratio"]) == 0.82 and f18["met"] == "0" and f18["rounds"] == "3", f18
# the script: no character gnuplot would act on inside a double-quoted string
gp = open("out/all.gp").read()
assert "evil" in gp and "`" not in gp and "$(" not in gp and "@x" not in gp, gp
for line in gp.splitlines():
    if line.startswith("set xtics"):
        body = line[len("set xtics ("):line.rindex(")")]
        assert '\\"' not in body and "'" not in body, line
EOF

if command -v gnuplot > /dev/null 2>&1; then
    for ext in png pdf svg; do
        test -s "out/all.$ext" || { echo "out/all.$ext was not drawn"; exit 1; }
    done
fi
test ! -e PWNED && test ! -e out/PWNED && test ! -e PWNED2 && test ! -e out/PWNED2

# damaged files: refused, naming the file (and the row), nothing drawn
for f in bad trunc missing; do
    if "$PY" "$SRC/bench/ort_report.py" "$f.json" -o "out/$f" > "$f.log" 2>&1; then
        echo "$f.json was accepted"; exit 1
    fi
    grep -q "$f.json" "$f.log" || { echo "$f.json: the error does not name the file"; cat "$f.log"; exit 1; }
    test ! -e "out/$f.csv"
done
grep -q "row 0" bad.log
# an output name that could reach the script is refused
if "$PY" "$SRC/bench/ort_report.py" a.json -o "out/a'b" > name.log 2>&1; then
    echo "a quote in the output name was accepted"; exit 1
fi
echo "ort_report: cells, goals, full rounds, names and damaged files as expected"

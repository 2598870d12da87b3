#!/usr/bin/env python3
"""The ten cells of dlas against ONNX Runtime as one figure (and a CSV).

    python3 bench/ort_report.py RUN.json [RUN.json ...] -o OUT [--rounds all|full]

Reads the --json files of bench/vs_ort.py runs (a later file's cell replaces
an earlier one's: a batch-1 run and a batch-16 run make one figure) and
draws, per model and batch, dlas's time over ORT's: the median of the
per-round ratios, a bar from the lowest to the highest round's ratio, and
the issue's goal for that cell as a short black line. --rounds full takes
only the rounds in which the machine gave at least 90% of its best FMA rate
(vs_ort.py's "full rounds"), where a run recorded them.

Writes OUT.csv (one row a cell; pandas reads it as is), OUT.gp (the gnuplot
script: rerun with `gnuplot OUT.gp` in its folder), OUT.dat, and, where
gnuplot is installed (Debian: gnuplot-nox), OUT.png, OUT.pdf and OUT.svg.
Names read from the JSON reach the script only through a whitelist of
characters, and gnuplot runs without a shell.
"""
import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys

# the cells of the issue: model key -> (label, goal at batch 1, goal at batch 16)
CELLS = {
    "resnet18": ("ResNet-18 224x224", 0.8, 1.0),
    "cifar-resnet18": ("CIFAR ResNet-18 32x32", 0.8, 1.0),
    "mobilenetv2": ("MobileNet-v2 224x224", 0.8, 1.0),
    "resnet50": ("ResNet-50 224x224", 1.0, 1.0),
    "densenet121": ("DenseNet-121 224x224", 1.0, 1.0),
}
ORDER = list(CELLS)
# what a cell of a vs_ort.py --json file must hold (and its "full" rounds, where there)
NUMBERS = ("ratio", "ratio_lo", "ratio_hi", "dlas_ms", "ort_ms", "dlas_spread", "ort_spread")


def safe(s):
    """s with only letters, digits, spaces and a few marks: safe inside a
    gnuplot string and a file name part."""
    return re.sub(r"[^A-Za-z0-9 _.,:=+()/%-]", "_", str(s))[:80]


def load(paths):
    cells = {}
    for p in paths:
        try:
            with open(p) as f:
                d = json.load(f)
        except (OSError, ValueError) as e:
            sys.exit("ort_report: %s: %s" % (p, e))
        rows = d.get("rows") if isinstance(d, dict) else None
        if not isinstance(rows, list):
            sys.exit("ort_report: %s: no \"rows\" list (not a vs_ort.py --json file?)" % p)
        for i, r in enumerate(rows):
            try:
                key = (str(r["model"]), int(r["batch"]))
                for k in NUMBERS:
                    float(r[k])
                    if isinstance(r.get("full"), dict):
                        float(r["full"][k])
            except (KeyError, TypeError, ValueError) as e:
                sys.exit("ort_report: %s: row %d: %s missing or not a number" % (p, i, e))
            cells[key] = r
    return cells


def cell_stats(r, rounds):
    src = r.get("full") if rounds == "full" and isinstance(r.get("full"), dict) else r
    n = r.get("full_rounds") if src is not r else len(r.get("rounds", []))
    return (float(src["ratio"]), float(src["ratio_lo"]), float(src["ratio_hi"]),
            float(src["dlas_ms"]), float(src["ort_ms"]), float(src["dlas_spread"]),
            float(src["ort_spread"]), n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("runs", nargs="+", help="vs_ort.py --json files")
    ap.add_argument("-o", "--out", required=True, help="output path without extension")
    ap.add_argument("--rounds", choices=["all", "full"], default="all")
    ap.add_argument("--title", default="", help="a line under the figure's title")
    a = ap.parse_args()
    cells = load(a.runs)
    models = [m for m in ORDER if any(k[0] == m for k in cells)]
    models += sorted({k[0] for k in cells} - set(models))
    batches = sorted({k[1] for k in cells})
    if not models:
        sys.exit("ort_report: no cells in %s" % ", ".join(a.runs))
    out_dir = os.path.dirname(os.path.abspath(a.out))
    base = os.path.basename(a.out)
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", base) or base.startswith("."):
        sys.exit("ort_report: -o: the file name part may hold letters, digits, '_', '.', '-'")
    os.makedirs(out_dir, exist_ok=True)

    table = []
    for m in models:
        label, g1, g16 = CELLS.get(m, (m, None, None))
        for b in batches:
            if (m, b) not in cells:
                continue
            ratio, lo, hi, dms, oms, ds, os_, n = cell_stats(cells[(m, b)], a.rounds)
            goal = g1 if b == 1 else g16 if b == 16 else None
            table.append({"model": m, "label": label, "batch": b, "ratio": ratio,
                          "ratio_lo": lo, "ratio_hi": hi, "goal": goal,
                          "met": "" if goal is None else int(ratio <= goal),
                          "dlas_ms": dms, "ort_ms": oms, "dlas_spread": ds, "ort_spread": os_,
                          "rounds": n})
    with open(a.out + ".csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(table[0]))
        w.writeheader()
        w.writerows(table)
    for t in table:
        print("%-22s b%-3d dlas/ORT %.2f [%.2f, %.2f]  goal %s  dlas %.2f ms (spread %2.0f%%)  "
              "ORT %.2f ms (spread %2.0f%%)" % (t["label"], t["batch"], t["ratio"], t["ratio_lo"],
                                               t["ratio_hi"], t["goal"] or "-", t["dlas_ms"],
                                               100 * t["dlas_spread"], t["ort_ms"],
                                               100 * t["ort_spread"]))

    # data: one block a batch; x = model index, shifted per batch
    nb = len(batches)
    width = 0.5 / max(nb, 1)
    with open(os.path.join(out_dir, base + ".dat"), "w") as f:
        for i, b in enumerate(batches):
            f.write("# batch %d: x ratio lo hi goal\n" % b)
            for t in table:
                if t["batch"] != b:
                    continue
                x = models.index(t["model"]) + (i - (nb - 1) / 2) * width
                f.write("%.3f %.4f %.4f %.4f %s\n" % (x, t["ratio"], t["ratio_lo"],
                                                      t["ratio_hi"],
                                                      "%.3f" % t["goal"] if t["goal"] else "NaN"))
            f.write("\n\n")
    ymax = max([1.1] + [t["ratio_hi"] * 1.05 for t in table])
    ymin = min([0.4] + [t["ratio_lo"] * 0.95 for t in table])
    colours = ["#1f77b4", "#d95f02", "#1b9e77", "#7570b3"]
    points = [7, 5, 9, 13]
    # double quotes: gnuplot reads \n there; safe() leaves no quote or backslash
    xtics = ", ".join('"%s" %d' % ("\\n".join(safe(CELLS.get(m, (m,))[0]).rsplit(" ", 1)), i)
                      for i, m in enumerate(models))
    sub = safe(a.title) or ("rounds: " + a.rounds)
    w_px, h_px = 170 * len(models) + 200, 560
    with open(os.path.join(out_dir, base + ".gp"), "w") as g:
        g.write("# Drawn by bench/ort_report.py from %d vs_ort.py run(s).\n"
                "# Rerun with: gnuplot %s.gp (in this folder)\n" % (len(a.runs), base))
        g.write("set encoding utf8\nset border 3 lw 1.2\nset tics nomirror out\n"
                "set grid ytics lc rgb '#e6e6e6' lw 1\nset bars 2\n"
                "set xrange [-0.6:%d.6]\nset yrange [%.3f:%.3f]\n" % (len(models) - 1, ymin, ymax) +
                "set xtics (%s) scale 0\n" % xtics +
                "set ylabel 'dlas time / ONNX Runtime time (below 1: dlas faster)'\n"
                "set key at screen 0.5, screen 0.875 center horizontal Left reverse samplen 1.5 width 2\n"
                "set bmargin 4\nset tmargin 5.5\n"
                "set label 1 \"dlas time over ONNX Runtime time, 2 threads, fp32 (%s)\\npoints: the "
                "median of the per-round ratios; bars: the lowest to the highest round\" at "
                "screen 0.5, screen 0.955 center\n" % sub +
                "set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead lc rgb '#888888' "
                "dt 2 lw 1\n")
        for term, ext, size, font in (("pngcairo", "png", "%d,%d" % (w_px, h_px), "DejaVu Sans,11"),
                                      ("pdfcairo", "pdf", "%.2fin,%.2fin" % (w_px / 110, h_px / 110),
                                       "DejaVu Sans,8"),
                                      ("svg", "svg", "%d,%d" % (w_px, h_px), "DejaVu Sans,11")):
            g.write("\nset terminal %s size %s noenhanced font '%s'%s\nset output '%s.%s'\n"
                    % (term, size, font, " background rgb 'white'" if ext == "svg" else "", base,
                       ext))
            plots = []
            for i, b in enumerate(batches):
                plots.append("'%s.dat' index %d using 1:2:3:4 with yerrorbars pt %d ps 1.3 lw 1.5 "
                             "lc rgb '%s' title 'batch %d'"
                             % (base, i, points[i % 4], colours[i % 4], b))
            for i, b in enumerate(batches):
                plots.append("'%s.dat' index %d using ($1-%.3f):5:(%.3f):(0) with vectors nohead "
                             "lw 3 lc rgb 'black' %s"
                             % (base, i, width * 0.45, width * 0.9,
                                "title 'goal'" if i == 0 else "notitle"))
            g.write("plot " + ", \\\n     ".join(plots) + "\n")
        g.write("set output\n")
    if not shutil.which("gnuplot"):
        print("ort_report: gnuplot is not installed (Debian: gnuplot-nox): wrote %s.gp, .dat, .csv"
              % a.out)
        return
    r = subprocess.run(["gnuplot", base + ".gp"], cwd=out_dir, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True)
    if r.returncode:
        sys.exit("ort_report: gnuplot failed: %s" % r.stderr.strip()[-500:])
    print("ort_report: wrote %s.{png,pdf,svg,csv}" % a.out)


if __name__ == "__main__":
    main()

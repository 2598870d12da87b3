#!/usr/bin/env python3
"""Summary of bench/before_after.sh's files: OUT_DIR ROUNDS.

Per layer x primitive (bench_layers, 1 thread, CPU clock) and per model
(train_bench, images per CPU-second per thread and per wall second): the
median over rounds of each side, after/before of those medians, and the
min..max of the per-round ratios. Standard library only."""
import csv
import json
import os
import statistics
import sys


def ratio_line(name, before, after, higher_is_better):
    mb, ma = statistics.median(before), statistics.median(after)
    per = [a / b for a, b in zip(after, before) if b > 0]
    r = ma / mb if mb > 0 else float("nan")
    # express every ratio as after's time / before's time (< 1: faster)
    if higher_is_better:
        r = 1 / r if r else float("nan")
        per = [1 / p for p in per if p]
    return "%-52s %11.4g %11.4g %8.3f  %5.3f..%5.3f" % (name, mb, ma, r, min(per), max(per)), r


def main():
    out, rounds = sys.argv[1], int(sys.argv[2])
    print("%-52s %11s %11s %8s  %s" % ("measurement", "before", "after", "time a/b",
                                        "per-round range"))
    ratios = []
    layers = {}
    for side in ("before", "after"):
        for r in range(1, rounds + 1):
            path = os.path.join(out, "layers-%s-%d.csv" % (side, r))
            if not os.path.exists(path):
                continue
            for row in csv.DictReader(open(path)):
                key = (row["layer"], row["primitive"])
                layers.setdefault(key, {"before": [], "after": []})[side].append(
                    float(row["ms_median"]))
    for (layer, prim), v in sorted(layers.items()):
        if len(v["before"]) == len(v["after"]) and v["before"]:
            line, r = ratio_line("%s %s (ms, CPU)" % (layer, prim), v["before"], v["after"], False)
            print(line)
            ratios.append(r)
    train = {}
    for line in open(os.path.join(out, "train.jsonl")):
        j = json.loads(line)
        for k, unit in (("images_per_cpu_s", "img/CPU-s"), ("images_per_s", "img/s")):
            train.setdefault((j["model"], unit, k), {"before": [], "after": []})[j["side"]].append(
                float(j[k]))
    for (model, unit, k), v in sorted(train.items()):
        if len(v["before"]) == len(v["after"]) and v["before"]:
            line, r = ratio_line("train %s (%s)" % (model, unit), v["before"], v["after"], True)
            print(line)
            if k == "images_per_cpu_s":
                ratios.append(r)
    if ratios:
        print("geometric mean of after/before time over %d CPU-clock measurements: %.3f" % (
            len(ratios), statistics.geometric_mean(ratios)))


if __name__ == "__main__":
    main()

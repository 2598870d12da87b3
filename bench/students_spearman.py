#!/usr/bin/env python3
"""Spearman's rank correlation between BlockSwap's Fisher potential and test
accuracy over the points of a results directory (examples/students-fisher-
proxy.cfg: one genotype per point, each trained by the same recipe).

usage: students_spearman.py RESULTS_DIR [POTENTIAL_KEY [ACCURACY_KEY]]"""
import json, math, os, sys

def ranks(v):
    """Ranks from 1, ties given their mean rank."""
    order = sorted(range(len(v)), key=lambda i: v[i])
    r = [0.0] * len(v)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and v[order[j + 1]] == v[order[i]]:
            j += 1
        for k in range(i, j + 1):
            r[order[k]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return r

def pearson(x, y):
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else float("nan")

def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    pkey = sys.argv[2] if len(sys.argv) > 2 else "blockswap.fisher"
    akey = sys.argv[3] if len(sys.argv) > 3 else "accuracy_top1"
    with open(os.path.join(d, "results.json")) as f:
        rows = [r for r in json.load(f) if r.get("status") == "ok" and pkey in r and akey in r]
    if len(rows) < 3:
        sys.exit("%s: %d finished points with %s and %s; need at least 3" % (d, len(rows), pkey, akey))
    rows.sort(key=lambda r: -float(r[pkey]))
    print("%-10s %-14s %-9s %-9s %s" % ("params", "fisher", "top1", "train_s", "genotype"))
    for r in rows:
        print("%-10s %-14.6g %-9.4f %-9.1f %s" % (r.get("params", ""), float(r[pkey]), float(r[akey]),
              float(r.get("blockswap.train_seconds", "nan")), r.get("blockswap.genotype", "")))
    x = [float(r[pkey]) for r in rows]
    y = [float(r[akey]) for r in rows]
    rho = pearson(ranks(x), ranks(y))
    # two-sided p by the t approximation, df = n - 2
    n = len(rows)
    t = rho * math.sqrt((n - 2) / max(1e-300, 1 - rho * rho)) if abs(rho) < 1 else float("inf")
    print("n = %d genotypes; Spearman rho(Fisher potential, top-1) = %.3f (t = %.2f, df = %d)"
          % (n, rho, t, n - 2))

if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Summary of bench/gpu_infer.sh's outputs (csv module only; figures when
matplotlib is there): end-to-end dlas (every GPU primitive and auto) against
PyTorch eager, the own kernels against cuda-cudnn per layer, and the layers
whose best GPU primitive is not the best CPU primitive's counterpart.

    python3 bench/gpu_report.py bench/results/gpu

Writes OUT/summary-e2e.csv, OUT/summary-layers.csv, OUT/gpu-vs-torch.png and
OUT/own-vs-cudnn.png; prints the tables.
"""
import csv
import os
import statistics
import sys

MODELS = ["resnet18", "resnet50", "mobilenet_v2"]
OWN = ["cuda-direct", "cuda-winograd", "cuda-depthwise", "cuda-im2col-gemm"]


def rows(path):
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def find(d, suffix):
    if not os.path.isdir(d):
        return None
    for n in os.listdir(d):
        if n.endswith(suffix):
            return os.path.join(d, n)
    return None


def main(out):
    torch = {(r["model"], int(r["batch"]), r["mode"]): float(r["ms_median"])
             for r in rows(os.path.join(out, "torch.csv"))}
    e2e_rows, layer_rows = [], []
    print("\n== end to end (ms, device time of the forward, input on the device)")
    print(f"{'model':14s}{'batch':>6s}{'torch eager':>12s}{'torch graph':>12s}{'dlas auto':>11s}"
          f"{'cudnn':>9s}{'auto/torch':>11s}  best single primitive")
    for m in MODELS:
        for b in (1, 64):
            e = rows(find(os.path.join(out, f"{m}-b{b}"), "-e2e.csv") or "")
            ms = {r["primitive"]: float(r["ms_median"]) for r in e if r["status"] == "ok"}
            te, tg = torch.get((m, b, "eager")), torch.get((m, b, "cuda-graph"))
            auto = ms.get("auto")
            singles = {k: v for k, v in ms.items() if k != "auto"}
            best = min(singles, key=singles.get) if singles else ""
            ratio = auto / te if auto and te else float("nan")
            print(f"{m:14s}{b:6d}{te or float('nan'):12.3f}{tg or float('nan'):12.3f}"
                  f"{auto or float('nan'):11.3f}{ms.get('cuda-cudnn', float('nan')):9.3f}"
                  f"{ratio:11.3f}  {best} {singles.get(best, float('nan')):.3f}")
            for k, v in sorted(ms.items()):
                e2e_rows.append({"model": m, "batch": b, "plan": k, "ms": v,
                                 "torch_eager_ms": te, "torch_graph_ms": tg,
                                 "ratio_vs_torch_eager": v / te if te else ""})
    print("\n== own kernels against cuda-cudnn, per conv layer (time ratio own/cudnn; "
          "median over the layers each accepts, min..max)")
    for m in MODELS:
        for b in (1, 64):
            L = rows(find(os.path.join(out, f"{m}-b{b}"), "-layers.csv") or "")
            by = {}
            for r in L:
                if r["status"] == "ok":
                    by.setdefault(r["layer"], {})[r["primitive"]] = (float(r["ms_median"]),
                                                                     r["shape"])
            parts = []
            for own in OWN:
                rs = [v[own][0] / v["cuda-cudnn"][0] for v in by.values()
                      if own in v and "cuda-cudnn" in v]
                wins = sum(1 for x in rs if x < 1)
                if rs:
                    parts.append(f"{own} {statistics.median(rs):.2f} ({min(rs):.2f}..{max(rs):.2f},"
                                 f" faster on {wins}/{len(rs)})")
            print(f"{m:14s} b{b:<3d} " + "; ".join(parts))
            for layer, v in by.items():
                for prim, (t, shape) in v.items():
                    layer_rows.append({"model": m, "batch": b, "layer": layer, "shape": shape,
                                       "device": "cuda", "primitive": prim, "ms": t,
                                       "ratio_vs_cudnn": t / v["cuda-cudnn"][0]
                                       if "cuda-cudnn" in v else ""})
    print("\n== best primitive per layer, batch 1: GPU against CPU (same layer)")
    cpu_algo = {"im2col-gemm": "im2col-gemm", "direct": "direct", "spatial-pack": "direct",
                "winograd": "winograd", "grouped-spatial-pack": "depthwise"}
    gpu_algo = {"cuda-im2col-gemm": "im2col-gemm", "cuda-direct": "direct",
                "cuda-winograd": "winograd", "cuda-depthwise": "depthwise",
                "cuda-cudnn": "vendor (cuDNN)"}
    for m in MODELS:
        G = rows(find(os.path.join(out, f"{m}-b1"), "-layers.csv") or "")
        C = rows(find(os.path.join(out, f"{m}-cpu-b1"), "-layers.csv") or "")
        if not G or not C:
            continue
        gbest = {r["layer"]: r["primitive"] for r in G if r.get("best") == "1"}
        cbest = {r["layer"]: r["primitive"] for r in C if r.get("best") == "1"}
        gown = {}
        for r in G:
            if r["status"] == "ok" and r["primitive"] != "cuda-cudnn":
                t = float(r["ms_median"])
                if r["layer"] not in gown or t < gown[r["layer"]][1]:
                    gown[r["layer"]] = (r["primitive"], t)
        for r in C:
            if r["status"] == "ok":
                layer_rows.append({"model": m, "batch": 1, "layer": r["layer"],
                                   "shape": r["shape"], "device": "cpu",
                                   "primitive": r["primitive"], "ms": float(r["ms_median"]),
                                   "ratio_vs_cudnn": ""})
        same = diff = 0
        lines = []
        for layer, cp in cbest.items():
            if layer not in gown:
                continue
            ga, ca = gpu_algo.get(gown[layer][0]), cpu_algo.get(cp)
            if ga == ca:
                same += 1
            else:
                diff += 1
                lines.append(f"    {layer}: cpu {cp}, gpu own {gown[layer][0]} "
                             f"(overall gpu best {gbest.get(layer)})")
        print(f"{m}: best own GPU algorithm = best CPU algorithm on {same} layers, "
              f"differs on {diff}")
        for line in lines[:12]:
            print(line)
    for name, data in (("summary-e2e.csv", e2e_rows), ("summary-layers.csv", layer_rows)):
        if data:
            with open(os.path.join(out, name), "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=list(data[0].keys()))
                w.writeheader()
                w.writerows(data)
    try:
        plot(out, e2e_rows, layer_rows)
    except ImportError:
        print("(matplotlib not available: no figures)")


def plot(out, e2e_rows, layer_rows):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, b in zip(axes, (1, 64)):
        plans = ["auto", "cuda-cudnn", "cuda-im2col-gemm", "cuda-winograd", "cuda-direct",
                 "cuda-depthwise"]
        width = 0.12
        for i, pl in enumerate(plans):
            ys = []
            for m in MODELS:
                r = [x for x in e2e_rows if x["model"] == m and x["batch"] == b and x["plan"] == pl]
                ys.append(r[0]["ratio_vs_torch_eager"] if r and r[0]["ratio_vs_torch_eager"] != ""
                          else 0)
            ax.bar([k + (i - 2.5) * width for k in range(len(MODELS))], ys, width, label=pl)
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_xticks(range(len(MODELS)))
        ax.set_xticklabels(MODELS)
        ax.set_yscale("log")
        ax.set_ylabel("time / PyTorch eager (log)")
        ax.set_title(f"batch {b}, fp32, TF32 off")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "gpu-vs-torch.png"), dpi=130)
    fig, ax = plt.subplots(figsize=(7, 4))
    for own in OWN:
        xs = [r["ratio_vs_cudnn"] for r in layer_rows
              if r["device"] == "cuda" and r["primitive"] == own and r["ratio_vs_cudnn"] != ""]
        if xs:
            xs.sort()
            ax.plot(xs, [(i + 1) / len(xs) for i in range(len(xs))], label=own)
    ax.axvline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("time / cuda-cudnn, per conv layer (log)")
    ax.set_ylabel("fraction of layers")
    ax.set_title("own GPU kernels vs cuDNN, all models and batches")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "own-vs-cudnn.png"), dpi=130)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "bench/results/gpu")

#!/usr/bin/python3
"""dlas against PyTorch 1.13 (oneDNN), interleaved: each round runs dlas's timing
(bench_layers, or `dlas compare` for a model) and then PyTorch's in this process
(bench/torch_bench.py), so that a change in machine load hits both; the figure
reported for each is the median over rounds of the per-round medians.

Run with Debian's interpreter from the source tree, pointing at a build tree:

    /usr/bin/python3 bench/vs_torch.py layers key --threads 1 --build /tmp/b
    /usr/bin/python3 bench/vs_torch.py layers mobilenetv2-dw --threads 2 --build /tmp/b \\
        --prims grouped-spatial-pack,im2col-gemm
    /usr/bin/python3 bench/vs_torch.py model resnet18 --threads 2 --build /tmp/b

Writes a JSON summary with --json FILE.
"""
import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_bench  # noqa: E402

DLAS_MODELS = {
    "resnet18": ["--model", "resnet", "--input", "3x224x224", "--classes", "1000"],
    "cifar-resnet18": ["--model", "resnet", "--input", "3x32x32", "--classes", "10"],
    "mobilenetv2": ["--model", "mobilenet", "--input", "3x224x224", "--classes", "1000"],
}
DEFAULT_PRIMS = "direct,spatial-pack,winograd,grouped-spatial-pack,pointwise,im2col-gemm"


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


def dlas_env(build, threads):
    env = dict(os.environ)
    env["DLAS_PLUGIN_PATH"] = os.path.join(build, "plugins.d")
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def run_dlas_layers(a, tmp):
    out = os.path.join(tmp, "layers.csv")
    cmd = [os.path.join(a.build, "bench", "bench_layers"), "--threads", str(a.threads),
           "--repeat", str(a.repeat), "--warmup", str(a.warmup), "--layers", a.what,
           "--csv", out] + a.prims.split(",")
    subprocess.run(cmd, check=True, env=dlas_env(a.build, a.threads), stdout=subprocess.DEVNULL)
    res = {}
    with open(out) as f:
        for row in csv.DictReader(f):
            res[(row["layer"], row["primitive"])] = float(row["ms_median"])
    return res


def run_dlas_model(a, tmp):
    cmd = [os.path.join(a.build, "dlas"), "compare"] + DLAS_MODELS[a.what] + [
        "--threads", str(a.threads), "--repeat", str(a.repeat), "--warmup", str(a.warmup),
        "--primitives", a.prims, "--out", tmp, "--quiet", "--no-check"]
    if a.tuning_log:
        cmd += ["--tuning-log", a.tuning_log]
    subprocess.run(cmd, check=True, env=dlas_env(a.build, a.threads))
    with open(os.path.join(tmp, "compare-%s.json" % DLAS_MODELS[a.what][1])) as f:
        j = json.load(f)
    res = {}
    for e in j["end_to_end"]:
        if e["status"] == "ok":
            res[(a.what, e["primitive"])] = e["ms"]
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=["layers", "model"])
    ap.add_argument("what", help="layer set (see torch_bench.SETS) or model: " + ", ".join(DLAS_MODELS))
    ap.add_argument("--build", required=True, help="dlas build tree")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=21)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--prims", default=DEFAULT_PRIMS)
    ap.add_argument("--tuning-log", default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    torch_bench.torch.set_num_threads(a.threads)
    if a.kind == "layers":
        items = torch_bench.prepare_layers(a.what)
        names = [it.name for it in items]
    else:
        items = [torch_bench.prepare_model(a.what)]
        names = [a.what]
    rounds_dlas, rounds_torch, loads = [], [], [loadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            rounds_dlas.append(run_dlas_layers(a, tmp) if a.kind == "layers" else run_dlas_model(a, tmp))
            time.sleep(0.2)
            rounds_torch.append({it.name: it.run(a.threads, a.warmup, a.repeat)["ms"] for it in items})
            time.sleep(0.2)  # let PyTorch's OpenMP workers stop spinning before dlas runs
            loads.append(loadavg())
    impls = sorted({k[1] for rd in rounds_dlas for k in rd})
    summary = {"kind": a.kind, "what": a.what, "threads": a.threads, "rounds": a.rounds,
               "repeat": a.repeat, "load": loads, "torch": torch_bench.torch.__version__,
               "rows": []}
    print("# %s %s, %d thread(s), median over %d rounds of medians of %d runs; load %s"
          % (a.kind, a.what, a.threads, a.rounds, a.repeat, " -> ".join(loads)))
    head = "%-14s %10s" % ("name", "torch ms") + "".join(" %14.14s" % i for i in impls)
    print(head + " %16s %8s" % ("best dlas", "ratio"))
    for n in names:
        t = statistics.median(rd[n] for rd in rounds_torch)
        row = {"name": n, "torch_ms": t, "dlas_ms": {}}
        line = "%-14s %10.4f" % (n, t)
        best, best_ms = None, None
        for i in impls:
            v = [rd[(n, i)] for rd in rounds_dlas if (n, i) in rd]
            if not v:
                line += " %14s" % "-"
                continue
            m = statistics.median(v)
            row["dlas_ms"][i] = m
            line += " %14.4f" % m
            if best_ms is None or m < best_ms:
                best, best_ms = i, m
        if best:
            row["best"], row["ratio"] = best, best_ms / t
            line += " %16.16s %8.3f" % (best, best_ms / t)
        summary["rows"].append(row)
        print(line)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()

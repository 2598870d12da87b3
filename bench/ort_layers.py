#!/usr/bin/env python3
"""dlas against ONNX Runtime layer by layer: where a model's time goes on each side.

    /usr/bin/python3 bench/ort_layers.py --build build --work W --model resnet50 --batch 16

W is the --work directory of an earlier `bench/vs_ort.py` run, which holds the
model's dlas checkpoint and ONNX file (vs_ort.py exports them with Debian's
PyTorch). Each side runs in its own process, one after the other: the dlas
plan (`bench_plan profile`: each node timed on its own, the backend
synchronised around it, conv layers bound by `auto`) and an ORT session with
its own profiler on (`ort_bench.js --profile`: per-node kernel times). Each
node's figure is the median over the timed runs.

ORT fuses and renames nodes (a conv with its relu and residual add becomes one
NCHWc node named after the fused output). Each dlas node is matched through
the ONNX graph to the ORT node that computes it: the one named after the ONNX
node's output, or (a conv) after the output of the chain of sole readers it
can fuse (Relu, Clip, Add, BatchNormalization), or after the ONNX node itself.
A dlas node that computes others (a fused mobile block, the stem with its max
pool) is set against the sum of ORT's nodes for all of them. ORT's nodes that
match no dlas node (its layout reorders, say) are listed after the table.

The table is printed; --csv writes one row a node (side, node, op, binding, ms,
ort_node, ort_ms, ratio) that pandas reads as is. Sequential sides on a shared
machine: the per-node ratios locate the gaps; `vs_ort.py` gives the figures to
report.
"""
import argparse
import csv
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ left in the source tree
import vs_ort  # noqa: E402  (the model table)

FUSABLE = {"Relu", "Clip", "Add", "BatchNormalization"}


def skip(msg):
    print("ort_layers: skipped: " + msg)
    sys.exit(77)


def dlas_name(onnx_node_name):
    """torchvision's module path of an exported node ("/layer1/layer1.0/conv1/Conv" ->
    "layer1.0.conv1"): a scope that extends the one before it ("layer1.0" after
    "layer1", "downsample.0" after "downsample") replaces it."""
    scopes = [s for s in onnx_node_name.split("/")[:-1] if s]
    path = []
    for s in scopes:
        if path and s.startswith(path[-1] + "."):
            path[-1] = s
        else:
            path.append(s)
    return ".".join(path)


def ort_names(onnx_path):
    """dlas node name -> the names ORT may give the node that computes it: the
    ONNX node's output, then (a conv) each sole reader's output along the chain
    it can fuse, each as ORT's NCHWc rewrite names it ("..._nchwc", a
    batchnorm turned into a conv "..._bn_nchwc") or not, and the ONNX node's
    own name."""
    import onnx
    g = onnx.load(onnx_path, load_external_data=False).graph
    readers = {}
    for n in g.node:
        for t in n.input:
            readers.setdefault(t, []).append(n)
    out = {}
    for n in g.node:
        if not n.output:
            continue
        tensors, t = [n.output[0]], n.output[0]
        while n.op_type == "Conv" and len(readers.get(t, [])) == 1 and \
                readers[t][0].op_type in FUSABLE:
            t = readers[t][0].output[0]
            tensors.append(t)
        names = [c for t in tensors for c in (t + "_nchwc", t + "_bn_nchwc", t)] + [n.name]
        out.setdefault(dlas_name(n.name), []).extend(names)  # a module's nodes (Pad, Pool)
    return out


def median_ms(values):
    return statistics.median(values) if values else float("nan")


def run_dlas(a, key, ckpt):
    _, (c, h, w), dlas_args, classes = vs_ort.MODELS[key]
    env = dict(os.environ, DLAS_PLUGIN_PATH=os.path.join(a.build, "plugins.d"),
               OMP_NUM_THREADS=str(a.threads))
    cmd = [os.path.join(a.build, "bench", "bench_plan")] + dlas_args + [
        "--input", "%dx%dx%d" % (c, h, w), "--classes", str(classes), "--weights", ckpt,
        "--batch", str(a.batch), "--threads", str(a.threads)]
    r = subprocess.run(cmd, input="profile %d %d\nquit\n" % (a.warmup, a.runs), text=True,
                       capture_output=True, env=env, cwd=vs_ort.SRC)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith('{"nodes"')]
    if r.returncode or not lines:
        sys.exit("ort_layers: bench_plan failed (status %d): %s" % (r.returncode,
                                                                  r.stderr.strip()[-400:]))
    return json.loads(lines[-1])["nodes"]


def run_ort(a, key, onnx_path, tmp):
    _, (c, h, w), _, _ = vs_ort.MODELS[key]
    prefix = os.path.join(tmp, "ortprof")
    cmd = [a.node, os.path.join(HERE, "ort_bench.js"), onnx_path, "--batch", str(a.batch),
           "--input", "%dx%dx%d" % (c, h, w), "--threads", str(a.threads), "--profile", prefix]
    try:
        r = subprocess.run(cmd, input="time %d %d\nquit\n" % (a.warmup, a.runs), text=True,
                           capture_output=True, cwd=vs_ort.SRC)
    except FileNotFoundError:
        skip("node.js (%s) is not installed: apt-get install nodejs" % a.node)
    if r.returncode == 77:
        skip("onnxruntime-node is not installed: npm install --prefix bench/ort "
             "--ignore-scripts onnxruntime-node")
    files = glob.glob(prefix + "*.json")
    if r.returncode or not files:
        sys.exit("ort_layers: ort_bench.js failed (status %d): %s" % (r.returncode,
                                                                    r.stderr.strip()[-400:]))
    times, ops = {}, {}
    for e in json.load(open(files[0])):
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            n = e["name"][:-len("_kernel_time")]
            times.setdefault(n, []).append(e["dur"] / 1000.0)
            ops[n] = e.get("args", {}).get("op_name", "?")
    # the profiler records every run, warm-ups too: each node's last a.runs are the timed ones
    return {n: median_ms(v[-a.runs:]) for n, v in times.items()}, ops


def match(nodes, names, ort_ms):
    """(dlas node, [ORT nodes]) for every timed dlas node: the ORT nodes that
    compute it and the nodes fused into it (a fused block's convs, the stem's
    pool); and ORT's nodes left unmatched."""
    used, rows = set(), []
    for n in nodes:
        hits = []
        for part in [n["name"]] + n.get("fused", []):
            for cand in names.get(part, []):
                if cand in ort_ms and cand not in used:
                    used.add(cand)
                    hits.append(cand)
                    break
        rows.append((n, hits))
    rest = [o for o in ort_ms if o not in used]
    return rows, rest


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 1)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True, help="dlas build tree (make -C BUILD)")
    ap.add_argument("--work", required=True, help="a vs_ort.py --work directory")
    ap.add_argument("--model", required=True, choices=sorted(vs_ort.MODELS))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=21, help="timed runs a side (median per node)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed runs a side first")
    ap.add_argument("--csv", help="write the per-node table here too")
    ap.add_argument("--node", default="node", help="the node.js binary")
    a = ap.parse_args()
    if a.batch < 1 or a.threads < 1 or a.runs < 1 or a.warmup < 0:
        ap.error("--batch, --threads and --runs must be at least 1, --warmup at least 0")
    ckpt, onnx_path = (os.path.join(a.work, "%s.%s" % (a.model, e)) for e in ("ckpt", "onnx"))
    for f in (ckpt, onnx_path):
        if not os.path.exists(f):
            sys.exit("ort_layers: %s is missing: run bench/vs_ort.py --build %s --models %s "
                     "--work %s first (it exports the model)" % (f, a.build, a.model, a.work))
    try:
        names = ort_names(onnx_path)
    except ImportError:
        skip("python3-onnx is not installed (apt-get install python3-onnx)")
    if not os.path.exists(os.path.join(a.build, "bench", "bench_plan")):
        sys.exit("ort_layers: %s/bench/bench_plan is missing: make -C %s bench/bench_plan" %
                 (a.build, a.build))
    nodes = [n for n in run_dlas(a, a.model, ckpt) if n["ms"] > 0]
    with tempfile.TemporaryDirectory() as tmp:
        ort_ms, ort_ops = run_ort(a, a.model, onnx_path, tmp)
    rows, rest = match(nodes, names, ort_ms)

    print("%s, batch %d, %d threads: per-node medians of %d runs (ms); ORT's time summed over "
          "its nodes for the dlas node and those fused into it" %
          (a.model, a.batch, a.threads, a.runs))
    print("%-28s %-10s %-22s %9s %9s %8s %s" % ("dlas node", "op", "binding", "dlas", "ORT",
                                               "dlas/ORT", "ORT nodes"))
    table = []
    for n, hits in rows:
        om = sum(ort_ms[o] for o in hits) if hits else float("nan")
        ratio = n["ms"] / om if hits and om > 0 else float("nan")
        print("%-28s %-10s %-22s %9.4f %9.4f %8.2f %d" % (n["name"][:28], n["op"][:10],
                                                          n["binding"][:22], n["ms"], om, ratio,
                                                          len(hits)))
        table.append(["dlas", n["name"], n["op"], n["binding"], n["ms"], " ".join(hits),
                      round(om, 6), round(ratio, 4)])
    if rest:
        print("ORT nodes matched to no dlas node:")
        for o in rest:
            print("  %-60s %-14s %9.4f" % (o[:60], ort_ops[o][:14], ort_ms[o]))
            table.append(["ort", "", ort_ops[o], "", float("nan"), o, round(ort_ms[o], 6),
                          float("nan")])
    d_m = sum(n["ms"] for n, h in rows if h)
    o_m = sum(ort_ms[o] for _, h in rows for o in h)
    print("matched: dlas %.3f ms, ORT %.3f ms (%.2f); all nodes: dlas %.3f, ORT %.3f" %
          (d_m, o_m, d_m / o_m if o_m else float("nan"), sum(n["ms"] for n in nodes),
           sum(ort_ms.values())))
    if a.csv:
        with open(a.csv + ".tmp", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["side", "node", "op", "binding", "ms", "ort_node", "ort_ms", "ratio"])
            w.writerows(table)
        os.replace(a.csv + ".tmp", a.csv)


if __name__ == "__main__":
    main()

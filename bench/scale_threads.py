#!/usr/bin/python3
"""Thread scaling: dlas (`auto`) against PyTorch at 1, 2, 4, ... threads, interleaved.

For each model and batch, one `bench_plan` process per thread count binds the
model with `auto` *at that thread count* (so each plan is the one dlas would
run there), and PyTorch runs the same torchvision model, TorchScript-frozen and
optimised for inference as in bench/torch_bench.py, with torch.set_num_threads.
Weights are random on both sides (timing only; bench/vs_ort.py checks
outputs). Each round times every thread count on both engines, the order of
the thread counts reversed every other round, so a change in machine load
hits all of them; the figure per cell is the median over rounds of the
round medians.

Printed per model and batch: each engine's time, its speed-up over its own
1-thread time, its parallel efficiency (speed-up / threads), and dlas/PyTorch.
A machine with fewer cores than the largest thread count asked is refused
(oversubscribed threads measure the scheduler, not the engine).

    /usr/bin/python3 bench/scale_threads.py --build build --threads 1,2
    python3 bench/scale_threads.py --build build --threads 1,2,4,8,16 --json scale.json

--bench-plan and --plugins point at a bench_plan binary and plugin folder
outside a build tree (a copied bundle on another machine). Exit status 77
when PyTorch is missing.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vs_ort  # noqa: E402  (the bench_plan line protocol)

DLAS_ARGS = {key: v[2] for key, v in vs_ort.MODELS.items()}


def loadavg():
    return vs_ort.loadavg()


def start_dlas(a, key, batch, threads):
    _, (c, h, w), args, classes = vs_ort.MODELS[key]
    env = dict(os.environ)
    env["DLAS_PLUGIN_PATH"] = a.plugins
    env["OMP_NUM_THREADS"] = str(threads)
    cmd = [a.bench_plan] + args + ["--input", "%dx%dx%d" % (c, h, w), "--classes", str(classes),
                                   "--batch", str(batch), "--threads", str(threads)]
    # auto's per-layer report goes to stderr: five of them per model would bury the table
    return vs_ort.Server("dlas-t%d" % threads, cmd, env=env,
                         stderr=None if a.verbose else subprocess.DEVNULL)


def cell(times):
    return statistics.median(times), min(times), max(times)


def bench_one(a, tb, key, batch, threads):
    torch_key = key
    if torch_key not in tb.MODELS:
        raise SystemExit("scale_threads: bench/torch_bench.py has no model %s" % key)
    t0 = time.time()
    servers = {t: start_dlas(a, key, batch, t) for t in threads}
    prepared = tb.prepare_model(torch_key, batch)
    print("  plans ready in %.1f s: %s" % (time.time() - t0, "; ".join(
        "%d threads %s" % (t, s.hello["bindings"]) for t, s in servers.items())), flush=True)
    dl = {t: [] for t in threads}
    pt = {t: [] for t in threads}
    try:
        for r in range(a.rounds):
            order = threads if r % 2 == 0 else threads[::-1]
            for t in order:
                # a pause after each side: the other side's OpenMP threads
                # spin for a while after its runs, on the cores this one uses
                dl[t].append(servers[t].ask("time %d %d" % (a.warmup, a.repeat))["ms"])
                time.sleep(a.pause)
                pt[t].append(prepared.run(t, a.warmup, a.repeat)["ms"])
                time.sleep(a.pause)
            print("  round %d (load %s): " % (r + 1, loadavg()) + ", ".join(
                "%dt dlas %.2f torch %.2f" % (t, dl[t][-1], pt[t][-1]) for t in threads),
                flush=True)
    finally:
        for s in servers.values():
            s.close()
    rows = []
    d1, p1 = statistics.median(dl[threads[0]]), statistics.median(pt[threads[0]])
    for t in threads:
        dm, dlo, dhi = cell(dl[t])
        pm, plo, phi = cell(pt[t])
        rows.append({"model": key, "batch": batch, "threads": t, "dlas_ms": dm, "dlas_lo": dlo,
                     "dlas_hi": dhi, "torch_ms": pm, "torch_lo": plo, "torch_hi": phi,
                     "dlas_speedup": d1 / dm, "torch_speedup": p1 / pm,
                     "dlas_eff": d1 / dm / (t / threads[0]), "torch_eff": p1 / pm / (t / threads[0]),
                     "ratio": statistics.median(x / y for x, y in zip(dl[t], pt[t])),
                     "bindings": servers[t].hello["bindings"]})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--build", default="build", help="dlas build tree")
    ap.add_argument("--bench-plan", help="bench_plan binary (default BUILD/bench/bench_plan)")
    ap.add_argument("--plugins", help="plugin folder (default BUILD/plugins.d)")
    ap.add_argument("--models", default="resnet18,mobilenetv2,resnet50")
    ap.add_argument("--batches", default="1")
    ap.add_argument("--threads", default="1,2", help="comma-separated thread counts, ascending")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=11, help="timed runs per engine per round")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--pause", type=float, default=0.3, help="seconds between sides")
    ap.add_argument("--verbose", action="store_true", help="show auto's per-layer timings")
    ap.add_argument("--json", help="write the rows here (atomically, after every model)")
    a = ap.parse_args()
    a.bench_plan = a.bench_plan or os.path.join(a.build, "bench", "bench_plan")
    a.plugins = a.plugins or os.path.join(a.build, "plugins.d")
    try:
        threads = [int(t) for t in a.threads.split(",")]
    except ValueError:
        ap.error("--threads: comma-separated integers, e.g. 1,2,4")
    if not threads or min(threads) < 1 or threads != sorted(set(threads)):
        ap.error("--threads: distinct positive counts in ascending order")
    cores = len(os.sched_getaffinity(0))
    if threads[-1] > cores:
        ap.error("--threads %d: this machine gives the process %d CPUs" % (threads[-1], cores))
    for key in a.models.split(","):
        if key not in vs_ort.MODELS:
            ap.error("--models: unknown %s (known: %s)" % (key, ", ".join(vs_ort.MODELS)))
    try:
        import torch_bench as tb
    except ImportError as e:
        print("scale_threads: skipped: PyTorch is not importable here (%s)" % e)
        sys.exit(77)
    out = {"cpus": cores, "threads": threads, "rounds": a.rounds, "repeat": a.repeat,
           "load_start": loadavg(), "torch": tb.torch.__version__, "rows": []}
    for key in a.models.split(","):
        for batch in (int(b) for b in a.batches.split(",")):
            print("%s, batch %d:" % (key, batch), flush=True)
            out["rows"] += bench_one(a, tb, key, batch, threads)
            if a.json:
                with open(a.json + ".tmp", "w") as f:
                    json.dump(out, f, indent=1)
                os.replace(a.json + ".tmp", a.json)
    out["load_end"] = loadavg()
    print("\n| model | batch | threads | dlas ms [min, max] | speed-up | eff. | PyTorch ms "
          "[min, max] | speed-up | eff. | dlas/PyTorch |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in out["rows"]:
        print("| %s | %d | %d | %.2f [%.2f, %.2f] | %.2f | %.2f | %.2f [%.2f, %.2f] | %.2f | %.2f "
              "| **%.2f** |" % (r["model"], r["batch"], r["threads"], r["dlas_ms"], r["dlas_lo"],
                                r["dlas_hi"], r["dlas_speedup"], r["dlas_eff"], r["torch_ms"],
                                r["torch_lo"], r["torch_hi"], r["torch_speedup"], r["torch_eff"],
                                r["ratio"]))
    print("PyTorch %s, %d CPUs, load %s -> %s" % (out["torch"], cores, out["load_start"],
                                                  out["load_end"]))
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump(out, f, indent=1)
        os.replace(a.json + ".tmp", a.json)


if __name__ == "__main__":
    main()

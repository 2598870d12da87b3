#!/usr/bin/python3
"""dlas against ONNX Runtime's CPU engine, on the same models and weights, in
interleaved rounds.

For each model: torchvision builds it with seeded random weights (batchnorm
statistics and affine parameters randomised too, so that folding matters);
its state_dict becomes a dlas checkpoint (tools/dlas-torch to-dlas) and the
model an ONNX file (torch.onnx.export, opset 13). Then two processes are
started and kept for all rounds: bench/bench_plan (the dlas plan, conv layers
bound by `auto`, i.e. chosen by measurement when the plan is prepared) and
bench/ort_bench.js (an onnxruntime-node session: CPU execution provider, all
graph optimisations, T intra-op threads, 1 inter-op thread). Both run the
same input once and their outputs are checked against PyTorch's; then each
round times dlas and ORT (order alternating from round to round, a pause
between so the other side's spinning threads go idle), R runs each after W
warm-up runs, after one whole untimed round (--warmup-rounds). R is --repeat,
or more where the slower side needs them to be timed for --min-side seconds
(0.5 s by default): a round of 11 runs of a 3-ms model would last 33 ms, and
its median would be whatever state the VM was in at that instant. Reported
per side: the median over rounds of the round medians, with the min and max
round median (spread = (max-min)/median), and
the ratio dlas/ORT (median of the per-round ratios). The load average is
recorded with every round. dlas's OpenMP threads wait as libgomp does by
default, as they do in `dlas run` (--omp-wait default: ~9 ms of spinning
here, which on a shared machine takes the CPU from the threads being waited
for; --omp-wait short spins ~10 us then sleeps, which helps under load and
costs MobileNet-v2 at batch 1 18-68% on this VM when it is quiet).

The machine is probed too: before every round and after every timed side,
the dlas process runs a short fp32 FMA loop on the benchmark's thread count
(bench_plan's `probe`). A virtual machine can lose half of its capacity for
seconds at a time with no steal time and no load (two virtual CPUs scheduled
on one physical core), and its memory bandwidth to another tenant, so the
probe also reads 128 MiB on those threads (recorded per round, not used to
select rounds: here the rate doubles when the vCPUs sit on two L3 caches, and
both engines are slower then): a round in which any probe saw less than
--full of the best FMA rate of the run did not run on the whole machine.
The hypervisor also moves the two vCPUs nearer and further apart, for
seconds to minutes, and every thread that reads what another wrote pays
for the distance: the probe times a cache line's round trip between two
threads (~55 ns near, 300-700 ns apart on this VM), and the same MobileNet-v2
plan ran in 3.4 ms near and 4.1 ms apart, ORT's in 4.0 and 7.3. A round in
which any probe saw a round trip over --near times the shortest of the whole
run (every model; or --near-ns, where the run may never see the threads
near) did not run with its threads near either. Rounds are added, up to
--max-rounds, until --rounds of them ran on the whole machine with their
threads near; the figures are printed over every round, over those rounds,
and over the rounds whose every probe saw the threads apart.

    /usr/bin/python3 bench/vs_ort.py --build build            # the five models, batch 1 and 16
    /usr/bin/python3 bench/vs_ort.py --build build --models all --batches 1  # all sixteen
    /usr/bin/python3 bench/vs_ort.py --build build --models mobilenetv2 --batches 1 \\
        --rounds 7 --json out.json

Needs onnxruntime-node (npm install --prefix bench/ort --ignore-scripts
onnxruntime-node) and Debian's python3-torch/torchvision (run with
/usr/bin/python3). Without either it says so and exits with status 77.
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(HERE)

# name: (torchvision builder and its keyword arguments, input CxHxW, dlas model
# plugin and its parameters, classes). The first five are the cells;
# the others are the same families at other depths, widths and input sizes,
# so that a result is not one tuned to five shapes.
def _m(tv, chw, plugin, params, classes=1000, **kw):
    args = ["--model", plugin]
    for p in params:
        args += ["--param", p]
    return ((tv, kw), chw, args, classes)


MODELS = {
    "resnet18": _m("resnet18", (3, 224, 224), "resnet", ["depth=18"]),
    "cifar-resnet18": _m("cifar-resnet18", (3, 32, 32), "resnet", ["depth=18"], 10),
    "mobilenetv2": _m("mobilenet_v2", (3, 224, 224), "mobilenet", ["version=2"]),
    "resnet50": _m("resnet50", (3, 224, 224), "resnet", ["depth=50"]),
    "densenet121": _m("densenet121", (3, 224, 224), "densenet", ["depth=121"]),
    "resnet34": _m("resnet34", (3, 224, 224), "resnet", ["depth=34"]),
    "resnet101": _m("resnet101", (3, 224, 224), "resnet", ["depth=101"]),
    "densenet169": _m("densenet169", (3, 224, 224), "densenet", ["depth=169"]),
    "vgg11-bn": _m("vgg11_bn", (3, 224, 224), "vgg", ["depth=11", "batchnorm=true"]),
    "mobilenetv2-0.5": _m("mobilenet_v2", (3, 224, 224), "mobilenet", ["version=2", "width=0.5"],
                          width_mult=0.5),
    "mobilenetv2-1.4": _m("mobilenet_v2", (3, 224, 224), "mobilenet", ["version=2", "width=1.4"],
                          width_mult=1.4),
    "resnet18-160": _m("resnet18", (3, 160, 160), "resnet", ["depth=18"]),
    "resnet50-288": _m("resnet50", (3, 288, 288), "resnet", ["depth=50"]),
    "mobilenetv2-96": _m("mobilenet_v2", (3, 96, 96), "mobilenet", ["version=2"]),
    "resnext50": _m("resnext50_32x4d", (3, 224, 224), "resnet",
                    ["depth=50", "groups=32", "width_per_group=4"]),
    "wide-resnet50": _m("wide_resnet50_2", (3, 224, 224), "resnet",
                        ["depth=50", "width_per_group=128"]),
}
DEFAULT_MODELS = "resnet18,cifar-resnet18,mobilenetv2,resnet50,densenet121"


def skip(msg):
    print("vs_ort: skipped: " + msg)
    sys.exit(77)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_ticks():
    """(all ticks, steal ticks) of the machine from /proc/stat: time the
    hypervisor gave this VM's vCPUs to someone else shows up as steal, and a
    round that ran slow for no reason of its own usually has it."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(v[:8]), (v[7] if len(v) > 7 else 0)


def steal_pct(t0, t1):
    if not t0 or not t1 or t1[0] <= t0[0]:
        return 0.0
    return 100.0 * (t1[1] - t0[1]) / (t1[0] - t0[0])


def torch_model(torch, torchvision, name, classes, kw=None):
    if name == "cifar-resnet18":
        # torchvision's ResNet-18 with the 3x3/1 stem and no max pool, as dlas's
        # resnet plugin builds it for inputs smaller than 64x64
        m = torchvision.models.resnet18(num_classes=classes)
        m.conv1 = torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        m.maxpool = torch.nn.Identity()
    else:
        m = getattr(torchvision.models, name)(num_classes=classes, **(kw or {}))
    g = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                n = mod.num_features
                mod.weight.copy_(0.5 + torch.rand(n, generator=g))
                mod.bias.copy_(0.1 * torch.randn(n, generator=g))
                mod.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                mod.running_var.copy_(0.5 + torch.rand(n, generator=g))
    return m.eval()


class Server:
    """A process speaking the bench_plan / ort_bench.js line protocol."""

    def __init__(self, name, cmd, env=None, stderr=None):
        self.name = name
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=stderr, text=True, env=env, cwd=SRC)
        self.hello = self.read()
        if "ready" not in self.hello:
            raise RuntimeError("%s did not start: %s" % (name, self.hello))

    def read(self):
        line = self.p.stdout.readline()
        if not line:
            rc = self.p.wait()
            if rc == 77:
                skip("%s: its engine is not installed (see its message above)" % self.name)
            raise RuntimeError("%s exited with status %d" % (self.name, rc))
        return json.loads(line)

    def ask(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        r = self.read()
        if "error" in r:
            raise RuntimeError("%s: %s: %s" % (self.name, cmd, r["error"]))
        return r

    def close(self):
        try:
            self.p.stdin.write("quit\n")
            self.p.stdin.close()
        except OSError:
            pass
        self.p.wait()


def rel_err(a, b):
    import numpy as np
    return float(np.linalg.norm((a - b).ravel()) / max(np.linalg.norm(b.ravel()), 1e-30))


def prepare(a, torch, torchvision, key, batch, tmp):
    (tv, kw), (c, h, w), _, classes = MODELS[key]
    torch.manual_seed(1)
    m = torch_model(torch, torchvision, tv, classes, kw)
    pt, ckpt, onnx = (os.path.join(tmp, "%s.%s" % (key, e)) for e in ("pt", "ckpt", "onnx"))
    # both files or neither: each is written under a temporary name and
    # renamed, the checkpoint last, so an interrupted run leaves no half pair
    if not (os.path.exists(ckpt) and os.path.exists(onnx)):
        torch.save(m.state_dict(), pt)
        x0 = torch.randn(1, c, h, w)
        torch.onnx.export(m, x0, onnx + ".tmp", opset_version=13, input_names=["input"],
                          output_names=["output"], dynamic_axes={"input": {0: "batch"},
                                                                 "output": {0: "batch"}},
                          do_constant_folding=True)
        os.replace(onnx + ".tmp", onnx)
        subprocess.run([sys.executable, os.path.join(SRC, "tools", "dlas-torch"), "to-dlas", pt,
                        ckpt + ".tmp"], check=True, stdout=subprocess.DEVNULL)
        os.replace(ckpt + ".tmp", ckpt)
    x = torch.randn(batch, c, h, w, generator=torch.Generator().manual_seed(batch))
    with torch.no_grad():
        ref = m(x).numpy()
    xin = os.path.join(tmp, "%s-b%d.in" % (key, batch))
    x.numpy().astype("<f4").tofile(xin)
    return m, ckpt, onnx, xin, ref


# dlas variants: name -> bench_plan arguments beyond the model's
VARIANTS = {
    "auto": [],                      # auto by measurement, fused mobile blocks where they win
    "auto-noblocks": ["--blocks", "0"],  # auto over the primitives alone, every conv on its own
    "auto-nchw": ["--block-layout", "nchw"],  # fused blocks, each converting from and to NCHW
    "auto-copy": ["--concat", "copy"],  # every concat copies (no views read by batchnorms)
    "auto-groups": ["--block-schedule", "groups"],  # fused blocks never on the row schedule
    "auto-nohead": ["--head", "layers"],  # the head (1x1 conv, pool, linear) layer by layer
    "auto-nostem": ["--stem", "layers"],  # the stem (conv, max pool) layer by layer
    "auto-poolafter": ["--pool", "after"],  # average pools after their 1x1 conv, as in the graph
    "auto-separate": ["--prologue", "separate"],  # batchnorms before a 1x1 conv as passes of their own
    "auto-layout-nchw": ["--layout", "nchw"],  # every activation NCHW, none in channel blocks of 16
    "auto-spin": [],  # OpenMP threads wait as libgomp does by default (300000 spins, then sleep)
    "auto-short": [],  # OpenMP threads spin 300 times (~10 us), then sleep
    "auto-passive": [],  # OpenMP threads sleep at once when they wait
    "auto-bind": [],  # OpenMP threads pinned, one to each CPU in order (OMP_PROC_BIND=close)
}
# dlas variants that wait in their own way whatever --omp-wait says
VARIANT_WAIT = {"auto-spin": "default", "auto-short": "short", "auto-passive": "passive"}
# dlas variants with more OpenMP settings in their environment (read by libgomp at start-up)
VARIANT_ENV = {"auto-bind": {"OMP_PROC_BIND": "close", "OMP_PLACES": "threads"}}


def omp_wait_env(env, how):
    """env with the OpenMP wait settings of --omp-wait (libgomp reads them at start-up)."""
    env = dict(env)
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("GOMP_SPINCOUNT", None)
    if how == "short":
        env["GOMP_SPINCOUNT"] = "300"
    elif how == "passive":
        env["OMP_WAIT_POLICY"] = "passive"
    return env


def start_servers(a, key, batch, ckpt, onnx):
    _, (c, h, w), dlas_args, classes = MODELS[key]
    env = dict(os.environ)
    env["DLAS_PLUGIN_PATH"] = os.path.join(a.build, "plugins.d")
    env["OMP_NUM_THREADS"] = str(a.threads)
    shape = "%dx%dx%d" % (c, h, w)
    servers = []
    for v in a.variants:
        venv = dict(omp_wait_env(env, VARIANT_WAIT.get(v, a.omp_wait)), **VARIANT_ENV.get(v, {}))
        cmd = [os.path.join(a.build, "bench", "bench_plan")] + dlas_args + [
            "--input", shape, "--classes", str(classes), "--weights", ckpt, "--batch", str(batch),
            "--threads", str(a.threads)] + VARIANTS[v] + (["--cpu-time"] if a.cpu_time else [])
        if a.primitive:
            cmd += ["--primitive", a.primitive]
        else:
            cmd += ["--primitives", a.prims]
        t0 = time.time()
        d = Server("dlas" if v == a.variants[0] else "dlas:" + v, cmd, venv)
        d.hello["wall_s"] = time.time() - t0
        d.hello["variant"] = v
        servers.append(d)
    o = Server("ort", [a.node, os.path.join(HERE, "ort_bench.js"), onnx, "--batch", str(batch),
                       "--input", shape, "--threads", str(a.threads)] +
               (["--cpu-time"] if a.cpu_time else []))
    return servers, o


def check(servers, xin, ref, tmp):
    import numpy as np
    errs = {}
    for s in servers:
        out = os.path.join(tmp, "out-%s" % s.name)
        s.ask("run %s %s" % (xin, out))
        y = np.fromfile(out, dtype="<f4").reshape(ref.shape)
        errs[s.name] = rel_err(y, ref)
    return errs


def runs_per_side(a, slowest_ms):
    """Timed runs per side per round: --repeat, or more, so that the slower
    side's runs take at least --min-side seconds (why: the module's
    docstring); both sides get equally many."""
    if a.min_side <= 0 or slowest_ms <= 0:
        return a.repeat
    return max(a.repeat, int(math.ceil(a.min_side * 1000.0 / slowest_ms)))


def full_rounds(rounds, best, frac, near):
    """The rounds in which every probe saw at least frac of the best FMA rate
    of the run and a line round trip at most near times the shortest of the
    run (best = [GFLOP/s, GB/s, ns]): both sides ran on the whole machine,
    its threads near each other. The memory rate is recorded, not used: on
    this VM it doubles (~33 to ~60 GB/s) when the two vCPUs land on
    different L3 caches, and both engines are slower then, so its best is
    not the machine at its best."""
    return [rd for rd in rounds if min(rd["probe_gflops"]) >= frac * best[0] and
            (not best[2] or max(rd["probe_line_ns"]) <= near * best[2])]


def apart_rounds(rounds, best, near):
    """The rounds in which every probe saw the threads apart: a round trip
    over near times the shortest of the run."""
    if not best[2]:
        return []
    return [rd for rd in rounds if min(rd["probe_line_ns"]) > near * best[2]]


def round_stats(rounds):
    """Each side's median over rounds of its round medians, the min and max,
    the spread (max-min)/median, the most steal in one round, and the ratio
    dlas/ORT (median, min, max of the per-round ratios)."""
    out = {}
    for side in ("dlas", "ort"):
        v = [rd[side] for rd in rounds]
        med = statistics.median(v)
        out[side + "_ms"] = med
        out[side + "_lo"], out[side + "_hi"] = min(v), max(v)
        out[side + "_spread"] = (max(v) - min(v)) / med
        out[side + "_steal_pct_max"] = max(rd[side + "_steal_pct"] for rd in rounds)
    ratios = [rd["dlas"] / rd["ort"] for rd in rounds]
    out["ratio"] = statistics.median(ratios)
    out["ratio_lo"], out["ratio_hi"] = min(ratios), max(ratios)
    out["rounds_used"] = len(rounds)
    return out


def classify(row, best, a):
    """The row's full and apart rounds against the best probes of the whole
    run so far (best = [GFLOP/s, GB/s, ns]): the machine's, not this
    model's, so that a model timed entirely while the vCPUs sat apart, or
    while the machine gave half its FMA rate, is not judged against
    itself. Called again for every row when a later model's probes find a
    better best."""
    row["probe_best_gflops"] = best[0] if a.probe else None
    row["probe_best_gbps"] = best[1] if a.probe else None
    row["probe_best_line_ns"] = best[2] if a.probe else None
    full = full_rounds(row["rounds"], best, a.full, a.near) if a.probe else []
    row["full_rounds"] = len(full)
    row["full"] = round_stats(full) if full else None
    apart = apart_rounds(row["rounds"], best, a.near) if a.probe else []
    row["apart_rounds"] = len(apart)
    row["apart"] = round_stats(apart) if apart else None


def bench_one(a, torch, torchvision, key, batch, tmp, best):
    """One model at one batch: its rounds, and its statistics. best: the
    best probes of the whole run so far, updated here."""
    _, ckpt, onnx, xin, ref = prepare(a, torch, torchvision, key, batch, tmp)
    ds, o = start_servers(a, key, batch, ckpt, onnx)
    d = ds[0]
    try:
        errs = check(ds + [o], xin, ref, tmp)
        for n, e in errs.items():  # every dlas variant and ORT against PyTorch
            if not e < a.max_err:
                raise RuntimeError("%s %s batch %d: output differs from PyTorch's: rel. err %.3g"
                                   % (n, key, batch, e))
        # Untimed rounds first, both sides alike: on an idle machine dlas's first
        # timed round took 1.6-2x its later ones (ResNet-18, DenseNet-121), which
        # W warm-up runs alone did not absorb.
        slowest = 0.0
        for r in range(a.warmup_rounds):
            for s in ds + [o]:
                slowest = max(slowest, s.ask("time %d %d" % (a.warmup, a.repeat))["ms"])
                time.sleep(a.pause)
        runs = runs_per_side(a, slowest)
        print("  %d timed runs a side a round" % runs, flush=True)
        rounds = []

        def probe():
            if not a.probe:
                return None
            p = d.ask("probe")
            best[0] = max(best[0], p["gflops"])
            best[1] = max(best[1], p.get("gbps", 0.0))
            if p.get("line_ns", 0.0) > 0:
                best[2] = min(best[2] or p["line_ns"], p["line_ns"])
            return p

        for _ in range(2):  # the machine's capacity before any round
            probe()
        while len(rounds) < a.max_rounds:
            r = len(rounds)
            load0 = loadavg()
            res = {}
            order = ds + [o] if r % 2 == 0 else [o] + ds[::-1]
            steal = {}
            probes = [probe()]
            for s in order:
                t0 = cpu_ticks()
                res[s.name] = s.ask("time %d %d" % (a.warmup, runs))
                steal[s.name] = steal_pct(t0, cpu_ticks())
                # after the pause: right after its runs ORT's pool still spins,
                # and a probe then measures that (half the machine), not the VM
                time.sleep(a.pause)
                probes.append(probe())
            rd = {"load": load0}
            if a.probe:
                rd["probe_gflops"] = [p["gflops"] for p in probes]
                rd["probe_gbps"] = [p.get("gbps", 0.0) for p in probes]
                rd["probe_line_ns"] = [p.get("line_ns", 0.0) for p in probes]
            for s in ds + [o]:
                rd[s.name] = res[s.name]["ms"]
                rd[s.name + "_min"] = res[s.name]["min"]
                rd[s.name + "_steal_pct"] = steal[s.name]
            rounds.append(rd)
            cap = ""
            if a.probe:
                cap = "; machine %.0f%% of its best FMA rate, %.0f%% of its best memory rate" % (
                    100 * min(rd["probe_gflops"]) / best[0],
                    100 * min(rd["probe_gbps"]) / max(best[1], 1e-9))
                if best[2]:
                    cap += ", threads %.0f-%.0f ns apart" % (min(rd["probe_line_ns"]),
                                                            max(rd["probe_line_ns"]))
            print("  round %d: " % (r + 1) + ", ".join(
                "%s %.3f ms" % (s.name, res[s.name]["ms"]) for s in ds + [o]) +
                ", dlas/ort %.3f (load %s; steal dlas %.1f%%, ort %.1f%%%s)" % (
                    res["dlas"]["ms"] / res["ort"]["ms"], load0, steal["dlas"], steal["ort"], cap),
                flush=True)
            if len(rounds) >= a.rounds and (
                    not a.probe or len(full_rounds(rounds, best, a.full, a.near)) >= a.rounds):
                break
    finally:
        for s in ds + [o]:
            s.close()
    row = {"model": key, "batch": batch, "threads": a.threads, "runs": runs, "err_dlas": errs["dlas"],
           "err_ort": errs["ort"], "dlas_plan": d.hello, "ort_session": o.hello, "rounds": rounds,
           "variants": {}}
    for s in ds[1:]:
        v = [rd[s.name] for rd in rounds]
        row["variants"][s.hello["variant"]] = {
            "ms": statistics.median(v), "lo": min(v), "hi": max(v), "err": errs[s.name],
            "plan": s.hello, "ratio": statistics.median(rd[s.name] / rd["ort"] for rd in rounds),
            "vs_first": statistics.median(rd["dlas"] / rd[s.name] for rd in rounds)}
    row.update(round_stats(rounds))
    classify(row, best, a)
    return row


def print_rounds_table(rows, key, what):
    """The markdown table of each row's statistics over a subset of its
    rounds (row[key], row[key + "_rounds"] of them)."""
    print("| model | batch | %s | dlas ms [min, max] | spread | ORT ms [min, max] | spread | "
          "dlas/ORT [min, max] |" % what)
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        f = r[key]
        if not f:
            print("| %s | %d | 0 of %d | | | | | |" % (r["model"], r["batch"], r["rounds_used"]))
            continue
        print("| %s | %d | %d of %d | %.3f [%.3f, %.3f] | %.0f%% | %.3f [%.3f, %.3f] | %.0f%% "
              "| **%.2f** [%.2f, %.2f] |" % (
                  r["model"], r["batch"], r[key + "_rounds"], r["rounds_used"], f["dlas_ms"],
                  f["dlas_lo"], f["dlas_hi"], 100 * f["dlas_spread"], f["ort_ms"], f["ort_lo"],
                  f["ort_hi"], 100 * f["ort_spread"], f["ratio"], f["ratio_lo"], f["ratio_hi"]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--build", required=True, help="dlas build tree (make -C BUILD)")
    ap.add_argument("--models", default=DEFAULT_MODELS, help="comma-separated, or all: " + ", ".join(MODELS) +
                    " (default: the issue's five)")
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5,
                    help="timed rounds; with the probe, rounds are added (up to --max-rounds) "
                         "until this many ran on the whole machine")
    ap.add_argument("--max-rounds", type=int, default=None,
                    help="most rounds run (default: 3 x --rounds)")
    ap.add_argument("--no-probe", dest="probe", action="store_false",
                    help="do not probe the machine's FMA rate around each timed side")
    ap.add_argument("--full", type=float, default=0.9,
                    help="a round ran on the whole machine when every probe in it saw at least "
                         "this fraction of the run's best FMA rate")
    ap.add_argument("--near", type=float, default=2.0,
                    help="... and its threads near each other when every probe in it saw a "
                         "cache line's round trip between two threads of at most this many "
                         "times the run's shortest (~55 ns near, 300-700 ns apart on this VM)")
    ap.add_argument("--near-ns", type=float, default=0.0,
                    help="a line round trip this machine gives with its threads near (bench_peak's "
                         "'line round trip', best), where the run itself may never see one: a "
                         "run timed entirely with the vCPUs apart is judged against it "
                         "(default: the run's shortest)")
    ap.add_argument("--repeat", type=int, default=11,
                    help="timed runs per side per round, at least (see --min-side)")
    ap.add_argument("--min-side", type=float, default=0.5,
                    help="seconds each side is timed for in a round, at least: the runs a side "
                         "gets are the most of --repeat and this time over the slower side's "
                         "time in the warm-up round (0, or --warmup-rounds 0, where no time "
                         "is known yet: --repeat runs)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs before each side's timed runs")
    ap.add_argument("--warmup-rounds", type=int, default=1,
                    help="whole rounds run and discarded before the timed rounds")
    ap.add_argument("--pause", type=float, default=0.3, help="seconds between sides")
    ap.add_argument("--prims", default="direct,spatial-pack,winograd,grouped-spatial-pack,pointwise,im2col-gemm",
                    help="auto's candidate primitives")
    ap.add_argument("--primitive", default=None, help="bind every layer to this one instead of auto")
    ap.add_argument("--variants", default="auto",
                    help="dlas plans timed in each round, the first one reported against ORT: " +
                    ", ".join(VARIANTS))
    ap.add_argument("--cpu-time", action="store_true",
                    help="time with each process's CPU clock (all its threads, spinning included) "
                         "instead of the wall clock: a development aid on a loaded machine, "
                         "not the figure to report")
    ap.add_argument("--omp-wait", choices=["short", "passive", "default"], default="default",
                    help="how dlas's OpenMP threads wait at barriers and between regions: default "
                         "(libgomp's, as `dlas run` does: 300000 spins, ~9 ms at ~30 ns a PAUSE "
                         "here, which on a shared machine holds the CPU the awaited thread needs), "
                         "short (spin 300 times, ~10 us here, then sleep; GOMP_SPINCOUNT=300) or "
                         "passive (sleep at once; OMP_WAIT_POLICY=passive). The variants "
                         "auto-spin, auto-short and auto-passive always wait their own way")
    ap.add_argument("--max-err", type=float, default=1e-4, help="rel. error allowed against PyTorch")
    ap.add_argument("--node", default=shutil.which("node") or "node")
    ap.add_argument("--work", default=None, help="keep exported models here (default: a temp dir)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    a.max_rounds = max(a.rounds, a.max_rounds or 3 * a.rounds)
    if a.rounds < 1 or not 0 < a.full <= 1 or not a.near >= 1 or not a.near_ns >= 0:
        ap.error("--rounds must be >= 1, --full in (0, 1], --near >= 1 and --near-ns >= 0")
    keys = list(MODELS) if a.models == "all" else [k for k in a.models.split(",") if k]
    a.variants = [v for v in a.variants.split(",") if v]
    for v in a.variants:
        if v not in VARIANTS:
            ap.error("unknown variant %r (known: %s)" % (v, ", ".join(VARIANTS)))
    for k in keys:
        if k not in MODELS:
            ap.error("unknown model %r (known: %s)" % (k, ", ".join(MODELS)))
    if not os.path.exists(os.path.join(a.build, "bench", "bench_plan")):
        ap.error("%s/bench/bench_plan not found: build dlas first" % a.build)
    if not os.path.isdir(os.path.join(HERE, "ort", "node_modules", "onnxruntime-node")) and \
            subprocess.run([a.node, "-e", "require('onnxruntime-node')"], stderr=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL).returncode != 0:
        skip("onnxruntime-node is not installed: npm install --prefix bench/ort --ignore-scripts "
             "onnxruntime-node")
    try:
        import torch
        import torchvision
    except ImportError as e:
        skip("PyTorch is needed to export the models (%s): run with Debian's /usr/bin/python3 "
             "and python3-torch, python3-torchvision" % e)
    torch.set_num_threads(a.threads)
    tmpd = None
    if a.work:
        os.makedirs(a.work, exist_ok=True)
        tmp = a.work
    else:
        tmpd = tempfile.TemporaryDirectory()
        tmp = tmpd.name
    with open("/proc/uptime") as f:
        up = f.read().split()[0]
    # the best FMA and memory rates probed in this run, over every model and
    # batch, and the shortest line round trip (0: none measured, one thread)
    best = [0.0, 0.0, a.near_ns]
    summary = {"clock": "process CPU" if a.cpu_time else "wall", "threads": a.threads, "rounds": a.rounds, "repeat": a.repeat, "min_side_s": a.min_side, "warmup": a.warmup,
               "warmup_rounds": a.warmup_rounds, "omp_wait": a.omp_wait,
               "uptime_s": float(up), "load_start": loadavg(), "torch": torch.__version__,
               "rows": []}
    print("# dlas (auto) against ONNX Runtime, %d threads, %d rounds of at least %d runs and "
          "%.2f s a side, %s clock, dlas's OpenMP wait %s; load %s"
          % (a.threads, a.rounds, a.repeat, a.min_side, summary["clock"], a.omp_wait,
             summary["load_start"]),
          flush=True)
    for key in keys:
        for batch in (int(b) for b in a.batches.split(",")):
            print("%s, batch %d:" % (key, batch), flush=True)
            row = bench_one(a, torch, torchvision, key, batch, tmp, best)
            summary["rows"].append(row)
            for r in summary["rows"]:  # earlier rows against a better best
                classify(r, best, a)
            if a.json:  # after every model: a long run keeps what it measured
                with open(a.json + ".tmp", "w") as f:
                    json.dump(summary, f, indent=1)
                os.replace(a.json + ".tmp", a.json)
    summary["load_end"] = loadavg()
    print("\n| model | batch | dlas ms [min, max] | spread | ORT ms [min, max] | spread | dlas/ORT [min, max] | err dlas / ORT |")
    print("|---|---|---|---|---|---|---|---|")
    for r in summary["rows"]:
        print("| %s | %d | %.3f [%.3f, %.3f] | %.0f%% | %.3f [%.3f, %.3f] | %.0f%% | **%.2f** [%.2f, %.2f] | %.1e / %.1e |" % (
            r["model"], r["batch"], r["dlas_ms"], r["dlas_lo"], r["dlas_hi"], 100 * r["dlas_spread"],
            r["ort_ms"], r["ort_lo"], r["ort_hi"], 100 * r["ort_spread"], r["ratio"], r["ratio_lo"],
            r["ratio_hi"], r["err_dlas"], r["err_ort"]))
    for r in summary["rows"]:
        for v, x in r["variants"].items():
            print("%s batch %d, %s: %.3f ms [%.3f, %.3f], dlas/ORT %.2f; %s / %s = %.2f" % (
                r["model"], r["batch"], v, x["ms"], x["lo"], x["hi"], x["ratio"], a.variants[0], v,
                x["vs_first"]))
    if a.probe:
        print("\nRounds in which the machine gave at least %.0f%% of its best FMA rate (%.1f "
              "GFLOP/s) and its threads were near (a line round trip within %.1fx the shortest, "
              "%.0f ns), probed before every round and after every timed side; a VM can lose "
              "half of its FMA rate, or move its vCPUs apart, for seconds:"
              % (100 * a.full, best[0], a.near, best[2]))
        print_rounds_table(summary["rows"], "full", "full rounds")
        if any(r["apart"] for r in summary["rows"]):
            print("\nRounds in which every probe saw the threads apart (a line round trip over "
                  "%.1fx the shortest):" % a.near)
            print_rounds_table(summary["rows"], "apart", "rounds apart")
    print("steal (% of the machine's CPU time taken by the hypervisor while a side was timed), "
          "most in one round: " + "; ".join("%s b%d dlas %.1f%% ORT %.1f%%" % (
              r["model"], r["batch"], r["dlas_steal_pct_max"], r["ort_steal_pct_max"])
              for r in summary["rows"]))
    print("load: %s -> %s" % (summary["load_start"], summary["load_end"]))
    if a.json:
        with open(a.json + ".tmp", "w") as f:
            json.dump(summary, f, indent=1)
        os.replace(a.json + ".tmp", a.json)
    if tmpd:
        tmpd.cleanup()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""dlas int8 against PyTorch 1.13's quantized engine (onednn), interleaved.

Each round runs, in turn: dlas's bench_int8 on ResNet-18's 3x3 layers (fp32
im2col-gemm and the int8 primitives, interleaved inside it), PyTorch's
quantized Conv2d (torch.ao.nn.quantized, onednn by default, channels-last uint8 input,
uint8 output) on the same layers, dlas's bench_int8_model (ResNet-18 at
224x224, fp32 plan and int8 plan), and PyTorch's quantized ResNet-18
(torchvision.models.quantization, fused, the engine's default qconfig (per-channel weights), calibrated
on random inputs, converted). The figure for each is the median over rounds of
the per-round medians, with the min and max of those; the load average is
recorded at each round. The machine's int8 peak (bench_peak's vpdpbusd
loop, same clock, same thread count) is measured first, and every int8
figure is also given as a fraction of it.

    /usr/bin/python3 bench/int8_vs_torch.py --build BUILD [--threads 1] [--rounds 5]
                                            [--repeat 11] [--json FILE]
"""
import argparse
import csv
import io
import json
import os
import statistics
import subprocess
import time

import torch
import torch.ao.nn.quantized as nnq

LAYERS = [("l1.conv", 4, 64, 56, 64), ("l2.conv", 3, 128, 28, 128),
          ("l3.conv", 3, 256, 14, 256), ("l4.conv", 3, 512, 7, 512)]
# multiply-adds of ResNet-18 at 224x224, batch 1 (`dlas summary --model resnet
# --input 3x224x224 --classes 1000 depth=18`; torchvision's model is the same)
RESNET18_MACS = 1814073344


def layer_macs(c, hw, o):
    return c * o * 9 * hw * hw


def int8_peak(build, threads, extra, env):
    """GMAC/s of bench_peak's independent vpdpbusd loop on `threads` threads."""
    txt = run_dlas([os.path.join(build, "bench", "bench_peak"), "--threads", str(threads),
                    "--sizes", "256", "--repeat", "5"] + extra, env)
    for line in txt.splitlines():
        if line.startswith("vnni vpdpbusd"):
            return float(line.split("GMAC/s")[1].split()[0]), line
    raise SystemExit("bench_peak printed no vpdpbusd line (no AVX-512 VNNI?)")


def loadavg():
    with open("/proc/loadavg") as f:
        return f.read().split()[0]


CLOCK = time.perf_counter


def median_time(fn, repeat, warmup=2):
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(repeat):
        t0 = CLOCK()
        fn()
        ts.append(CLOCK() - t0)
    return statistics.median(ts)


def torch_layers(repeat):
    out = {}
    for name, _, c, hw, o in LAYERS:
        conv = nnq.Conv2d(c, o, 3, padding=1)
        w = torch.randn(o, c, 3, 3) * 0.05
        qw = torch.quantize_per_channel(w, (w.abs().amax(dim=(1, 2, 3)) / 127).double(),
                                        torch.zeros(o, dtype=torch.long), 0, torch.qint8)
        conv.set_weight_bias(qw, torch.randn(o) * 0.1)
        conv.scale, conv.zero_point = 0.05, 0
        x = torch.quantize_per_tensor(torch.rand(1, c, hw, hw) * 4, 0.02, 3, torch.quint8)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            out[name] = median_time(lambda: conv(x), repeat) * 1e3
    return out


def torch_resnet18(engine):
    from torchvision.models.quantization import resnet18
    m = resnet18(weights=None, quantize=False).eval()
    m.fuse_model()
    m.qconfig = torch.ao.quantization.get_default_qconfig(engine)
    torch.ao.quantization.prepare(m, inplace=True)
    with torch.no_grad():
        for _ in range(2):
            m(torch.randn(2, 3, 224, 224))
    torch.ao.quantization.convert(m, inplace=True)
    return m


def run_dlas(cmd, env):
    return subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--prims", default="int8-direct,int8-gemm")
    ap.add_argument("--json")
    ap.add_argument("--peak-build",
                    help="build whose bench_peak measures the int8 peak (default --build; "
                         "for timing a build older than bench_peak's vpdpbusd loop)")
    ap.add_argument("--skip-first", default="false",
                    help="quant-int8's skip_first for dlas's ResNet-18 (default false: every "
                         "conv int8, as torchvision's quantized ResNet-18, whose stem is int8)")
    ap.add_argument("--engine", default="onednn",
                    help="PyTorch quantized engine (Debian's torch 1.13 has onednn and qnnpack, "
                         "not fbgemm)")
    ap.add_argument("--cpu-time", action="store_true",
                    help="time both sides with their process's CPU clock (1 thread on a busy "
                         "machine: the work without the time other processes hold the core)")
    a = ap.parse_args()
    global CLOCK
    if a.cpu_time:
        CLOCK = time.process_time
    extra = ["--cpu-time"] if a.cpu_time else []
    torch.backends.quantized.engine = a.engine
    torch.set_num_threads(a.threads)
    env = dict(os.environ, DLAS_PLUGIN_PATH=os.path.join(a.build, "plugins.d"),
               OMP_NUM_THREADS=str(a.threads))
    peak, peak_line = int8_peak(a.peak_build or a.build, a.threads, extra, env)
    print(f"int8 peak: {peak:.1f} GMAC/s ({peak_line.strip()})", flush=True)
    qmodel = torch_resnet18(a.engine)
    xin = torch.randn(1, 3, 224, 224)
    rounds = []
    for r in range(a.rounds):
        rec = {"load_before": loadavg(), "dlas_layers": {}, "torch_layers": {}}
        txt = run_dlas([os.path.join(a.build, "bench", "bench_int8"), "--threads",
                        str(a.threads), "--repeat", str(a.repeat), "--csv", "/dev/stdout",
                        "--layers", "resnet18-3x3"] + extra + a.prims.split(","), env)
        rows = [l for l in txt.splitlines() if l.count(",") == 9]
        for row in csv.DictReader(io.StringIO("\n".join(rows))):
            rec["dlas_layers"].setdefault(row["layer"], {})[row["primitive"]] = float(
                row["median_ms"])
        rec["torch_layers"] = torch_layers(a.repeat)
        txt = run_dlas([os.path.join(a.build, "bench", "bench_int8_model"), "--threads",
                        str(a.threads), "--repeat", str(a.repeat),
                        "--int8", a.prims.split(",")[0], "--skip-first", a.skip_first]
                       + extra, env)
        for line in txt.splitlines():
            f = line.split(",")
            if len(f) == 7 and f[0].startswith("resnet"):
                rec["dlas_e2e_" + f[1]] = float(f[4])
        with torch.no_grad():
            rec["torch_e2e"] = median_time(lambda: qmodel(xin), a.repeat) * 1e3
        rec["load_after"] = loadavg()
        rounds.append(rec)
        print(f"round {r + 1}/{a.rounds}: load {rec['load_before']} -> {rec['load_after']}",
              flush=True)

    def agg(vals):
        return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}

    summary = {"threads": a.threads, "rounds": a.rounds, "repeat": a.repeat,
               "clock": "cpu" if a.cpu_time else "wall",
               "loads": [(x["load_before"], x["load_after"]) for x in rounds], "layers": {},
               "int8_peak_gmacs": peak}
    prims = ["im2col-gemm"] + a.prims.split(",")
    print(f"\nper layer, ms (median of {a.rounds} round medians [min, max]), 1 image, "
          f"{a.threads} thread(s)")
    print(f"{'layer':10s} " + " ".join(f"{p:>22s}" for p in prims + ["torch-int8"]))
    tot = {p: 0.0 for p in prims + ["torch-int8"]}
    for name, count, *_ in LAYERS:
        row = {}
        for p in prims:
            row[p] = agg([x["dlas_layers"][name][p] for x in rounds])
        row["torch-int8"] = agg([x["torch_layers"][name] for x in rounds])
        summary["layers"][name] = row
        for p in row:
            tot[p] += row[p]["median"] * count
        print(f"{name:10s} " + " ".join(
            f"{row[p]['median']:8.3f} [{row[p]['min']:.3f},{row[p]['max']:.3f}]"
            for p in prims + ["torch-int8"]))
        _, _, c, hw, o = next(x for x in LAYERS if x[0] == name)
        frac = {p: layer_macs(c, hw, o) / (row[p]["median"] * 1e-3) / 1e9 / peak
                for p in prims[1:] + ["torch-int8"]}
        summary["layers"][name]["fraction_of_int8_peak"] = frac
        print(f"{'':10s} of int8 peak: " + ", ".join(f"{p} {v:.0%}" for p, v in frac.items()))
    summary["total_weighted"] = tot
    print("weighted total (x count): " + ", ".join(f"{p} {v:.3f}" for p, v in tot.items()))
    for p in a.prims.split(","):
        print(f"  {p}: {tot['im2col-gemm'] / tot[p]:.2f}x faster than fp32 im2col-gemm, "
              f"{tot[p] / tot['torch-int8']:.2f}x torch int8's time")
    e2e = {k: agg([x[k] for x in rounds]) for k in rounds[0] if k.startswith(("dlas_e2e", "torch_e2e"))}
    summary["e2e"] = e2e
    print("ResNet-18 end to end, ms: " + ", ".join(
        f"{k} {v['median']:.2f} [{v['min']:.2f},{v['max']:.2f}]" for k, v in e2e.items()))
    ki = "dlas_e2e_" + a.prims.split(",")[0]
    if ki in e2e:
        print(f"  dlas int8 / torch int8 = {e2e[ki]['median'] / e2e['torch_e2e']['median']:.2f}")
    for k in (ki, "torch_e2e"):
        if k in e2e:
            g = RESNET18_MACS / (e2e[k]["median"] * 1e-3) / 1e9
            e2e[k]["fraction_of_int8_peak"] = g / peak
            print(f"  {k}: {g:.1f} GMAC/s, {g / peak:.0%} of the int8 peak ({peak:.1f} GMAC/s)")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"summary": summary, "rounds": rounds}, f, indent=1)


if __name__ == "__main__":
    main()

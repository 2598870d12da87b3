#!/usr/bin/env python3
"""Two dlas plans of the same model, timed in alternation: A/B of a change.

Each side is a bench_plan server (its own `auto` by measurement, its own
build and arguments), kept open for every round; a round times both sides,
in alternating order, and the ratio B/A of that round's medians is kept. The
summary per model: each side's median over rounds, and the median [min, max]
of the per-round ratios (a range that straddles 1 is no change beyond the
noise of a shared machine).

    # the same build with and without a primitive among auto's candidates
    bench/plan_ab.py --a-build build --b-build build --models resnet50 \\
        --a-args="--primitives direct,spatial-pack,winograd,grouped-spatial-pack,im2col-gemm"
    # two builds (the commit before and after a change)
    bench/plan_ab.py --a-build ../before/build --b-build build --rounds 16

Models run with the weights of bench/vs_ort.py's work folder (--work; a
model without its .ckpt there runs with random weights: latency does not
depend on them).
"""
import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys

MODELS = {
    "resnet18": (["--model", "resnet", "--param", "depth=18"], "3x224x224", 1000),
    "cifar-resnet18": (["--model", "resnet", "--param", "depth=18"], "3x32x32", 10),
    "mobilenetv2": (["--model", "mobilenet", "--param", "version=2"], "3x224x224", 1000),
    "resnet50": (["--model", "resnet", "--param", "depth=50"], "3x224x224", 1000),
    "densenet121": (["--model", "densenet", "--param", "depth=121"], "3x224x224", 1000),
}


def server(build, model, extra, a):
    args, shape, classes = MODELS[model]
    cmd = [os.path.join(build, "bench", "bench_plan")] + args + [
        "--input", shape, "--classes", str(classes), "--batch", str(a.batch),
        "--threads", str(a.threads)]
    ckpt = os.path.join(a.work, model + ".ckpt")
    if os.path.exists(ckpt):
        cmd += ["--weights", ckpt]
    p = subprocess.Popen(cmd + extra, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline()
    if not line:
        sys.exit("plan_ab: %s did not start (%s)" % (cmd[0], " ".join(map(shlex.quote, cmd + extra))))
    return p, json.loads(line)


def ask(p, cmd):
    p.stdin.write(cmd + "\n")
    p.stdin.flush()
    return json.loads(p.stdout.readline())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--a-build", required=True, help="build tree of side A (make -C BUILD bench/bench_plan)")
    ap.add_argument("--b-build", required=True, help="build tree of side B")
    ap.add_argument("--a-args", default="", help="extra bench_plan arguments of side A (one string)")
    ap.add_argument("--b-args", default="", help="extra bench_plan arguments of side B")
    ap.add_argument("--models", default="resnet18,resnet50", help="comma-separated: " + ", ".join(MODELS))
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--repeat", type=int, default=10, help="timed runs a side a round (median kept)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--work", default="ort-work", help="folder with MODEL.ckpt weights (vs_ort.py --work)")
    a = ap.parse_args()
    for m in a.models.split(","):
        if m not in MODELS:
            ap.error("unknown model %r (known: %s)" % (m, ", ".join(MODELS)))
        sides = [server(a.a_build, m, shlex.split(a.a_args), a), server(a.b_build, m, shlex.split(a.b_args), a)]
        t, ratios = [[], []], []
        for r in range(a.rounds):
            cur = {}
            for i in ((0, 1) if r % 2 == 0 else (1, 0)):
                cur[i] = ask(sides[i][0], "time 2 %d" % a.repeat)["ms"]
                t[i].append(cur[i])
            ratios.append(cur[1] / cur[0])
            print("  %s round %d: A %.3f ms, B %.3f ms, B/A %.3f" % (m, r + 1, cur[0], cur[1], ratios[-1]),
                  file=sys.stderr, flush=True)
        for p, _ in sides:
            p.stdin.write("quit\n")
            p.stdin.flush()
            p.wait()
        print("%s b%d: A %.3f ms, B %.3f ms, B/A %.3f [%.3f, %.3f] over %d rounds" % (
            m, a.batch, statistics.median(t[0]), statistics.median(t[1]), statistics.median(ratios),
            min(ratios), max(ratios), a.rounds))
        for k, (_, hello) in zip("AB", sides):
            print("  %s: bindings %s, residual adds %s" % (k, hello.get("bindings"), hello.get("residual_adds")))


if __name__ == "__main__":
    main()

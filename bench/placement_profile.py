#!/usr/bin/python3
"""Where a plan's time goes when the VM's two vCPUs are apart.

One `bench_plan` process (2 threads, `auto` over the CPU primitives, random
weights: timing only) answers, round after round for --seconds: a probe (a
cache line's round trip between the threads), a per-node profile, a whole
timed run, and a second probe. Rounds whose two probes both read within
--near times the shortest round trip of the run are *near*, those whose two
probes both read over it are *apart* (bench/vs_ort.py's rule); the others are
left out. Printed: the whole plan's median near and apart, and the nodes whose
median time grows the most apart, with the primitive each is bound to.

    /usr/bin/python3 bench/placement_profile.py --build build --model resnet18 --seconds 240

Needs only a build (no PyTorch, no ONNX Runtime). --json keeps every round.
What the figures mean: bench/README-ort.md, "Why dlas's time moves with the
placement"; bench/bench_handoff measures the mechanisms on their own.
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import vs_ort  # noqa: E402  (the bench_plan line protocol, the models)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    ap.add_argument("--build", default="build", help="dlas build folder (default: build)")
    ap.add_argument("--model", default="resnet18", choices=sorted(vs_ort.MODELS))
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=240, help="how long to collect rounds (240)")
    ap.add_argument("--near", type=float, default=2.0,
                    help="a probe within this many times the shortest round trip is near (2.0)")
    ap.add_argument("--top", type=int, default=20, help="nodes to print (20)")
    ap.add_argument("--json", help="write every round here")
    a = ap.parse_args()
    if not (0 < a.seconds <= 86400 and a.batch >= 1 and a.near > 1):
        ap.error("--seconds in (0, 86400], --batch >= 1, --near > 1")
    exe = os.path.join(a.build, "bench", "bench_plan")
    if not os.path.exists(exe):
        ap.error("%s not found: build dlas first" % exe)
    _, (c, h, w), dlas_args, classes = vs_ort.MODELS[a.model]
    env = dict(os.environ, DLAS_PLUGIN_PATH=os.path.join(a.build, "plugins.d"), OMP_NUM_THREADS="2")
    cmd = [exe] + dlas_args + ["--input", "%dx%dx%d" % (c, h, w), "--classes", str(classes),
                               "--batch", str(a.batch), "--threads", "2", "--primitives",
                               "direct,spatial-pack,winograd,grouped-spatial-pack,pointwise,im2col-gemm"]
    s = vs_ort.Server("dlas", cmd, env)
    reps = "2 9" if a.batch == 1 else "1 3"
    rounds = []
    t_end = time.time() + a.seconds
    while not rounds or time.time() < t_end:  # at least one round
        p0 = s.ask("probe")
        prof = s.ask("profile " + reps)
        total = s.ask("time " + reps)["ms"]
        p1 = s.ask("probe")
        rounds.append({"probe_line_ns": [p0["line_ns"], p1["line_ns"]],
                       "probe_gflops": [p0["gflops"], p1["gflops"]], "ms": total,
                       "nodes": {n["name"]: [n["ms"], n.get("binding", "")] for n in prof["nodes"]}})
    s.close()
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"model": a.model, "batch": a.batch, "rounds": rounds}, f)
    # vs_ort.py's rules (tests/vs_ort_rounds.sh), on the line round trip alone
    best = [0.0, 0.0, min(min(r["probe_line_ns"]) for r in rounds)]
    shortest = best[2]
    near = vs_ort.full_rounds(rounds, best, 0.0, a.near)
    apart = vs_ort.apart_rounds(rounds, best, a.near)
    print("%s b%d, 2 threads: %d rounds, %d near, %d apart (a line round trip over %.1fx the "
          "shortest, %.0f ns)" % (a.model, a.batch, len(rounds), len(near), len(apart), a.near,
                                  shortest))
    if not near or not apart:
        print("placement_profile: the threads were not seen both near and apart; run longer")
        return 0 if rounds else 1
    tn = statistics.median(r["ms"] for r in near)
    ta = statistics.median(r["ms"] for r in apart)
    print("whole plan: near %.3f ms, apart %.3f ms, apart/near %.3f" % (tn, ta, ta / tn))
    rows = []
    for name, (_, binding) in near[0]["nodes"].items():
        mn = statistics.median(r["nodes"][name][0] for r in near)
        ma = statistics.median(r["nodes"][name][0] for r in apart)
        rows.append((ma - mn, name, binding, mn, ma))
    rows.sort(reverse=True)
    print("sum of the nodes' growth: %.3f ms" % sum(r[0] for r in rows))
    print("| node | bound to | near ms | apart ms | apart/near |")
    print("|---|---|---|---|---|")
    for d, name, binding, mn, ma in rows[:a.top]:
        print("| %s | %s | %.3f | %.3f | %.2f |" % (name, binding, mn, ma, ma / mn if mn else 0))
    return 0


if __name__ == "__main__":
    sys.exit(main())

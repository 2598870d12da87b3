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

Needs only a build (no PyTorch, no ONNX Runtime). --json keeps every round;
--from reads such a file instead of running, and --compare prints a second
one (say, from the build before a change) beside it, by node and by what the
nodes are bound to ("ref": the core's own operators, batchnorm, pooling):

    /usr/bin/python3 bench/placement_profile.py --model densenet121 --json /tmp/after.json
    /usr/bin/python3 bench/placement_profile.py --from /tmp/after.json --compare /tmp/before.json

Rounds of two runs are not interleaved (each run has its own plan and its
own minutes of the machine): for a change's effect, prefer bench/plan_ab.py.
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
    ap.add_argument("--plan-arg", action="append", default=[], metavar="ARG",
                    help="one more bench_plan argument (repeat it: --plan-arg=--layout "
                         "--plan-arg=nchw)")
    ap.add_argument("--json", help="write every round here")
    ap.add_argument("--from", dest="from_json", metavar="FILE",
                    help="read the rounds of an earlier --json instead of running")
    ap.add_argument("--compare", metavar="FILE",
                    help="an earlier --json to print beside this run (FILE's figures first)")
    a = ap.parse_args()
    if not (0 < a.seconds <= 86400 and a.batch >= 1 and a.near > 1):
        ap.error("--seconds in (0, 86400], --batch >= 1, --near > 1")
    if a.from_json:
        run = load(ap, a.from_json)
    else:
        run = collect(ap, a)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(run, f)
    base = load(ap, a.compare) if a.compare else None
    return report(run, a, base)


def load(ap, path):
    """A file --json wrote, checked for what report() reads."""
    try:
        with open(path) as f:
            run = json.load(f)
        ok = (isinstance(run, dict) and isinstance(run.get("rounds"), list) and run["rounds"] and
              all(isinstance(r, dict) and len(r.get("probe_line_ns", [])) == 2 and
                  len(r.get("probe_gflops", [])) == 2 and
                  all(isinstance(x, (int, float))
                      for x in r["probe_line_ns"] + r["probe_gflops"]) and
                  isinstance(r.get("ms"), (int, float)) and isinstance(r.get("nodes"), dict) and
                  all(isinstance(v, list) and len(v) == 2 and isinstance(v[0], (int, float)) and
                      isinstance(v[1], str) for v in r["nodes"].values())
                  for r in run["rounds"]))
    except (OSError, ValueError) as e:
        ap.error("%s: %s" % (path, e))
    if not ok:
        ap.error("%s: not rounds written by placement_profile.py --json" % path)
    return run


def collect(ap, a):
    """Rounds of probe, per-node profile, whole timed run, probe."""
    exe = os.path.join(a.build, "bench", "bench_plan")
    if not os.path.exists(exe):
        ap.error("%s not found: build dlas first" % exe)
    _, (c, h, w), dlas_args, classes = vs_ort.MODELS[a.model]
    env = dict(os.environ, DLAS_PLUGIN_PATH=os.path.join(a.build, "plugins.d"), OMP_NUM_THREADS="2")
    cmd = [exe] + dlas_args + ["--input", "%dx%dx%d" % (c, h, w), "--classes", str(classes),
                               "--batch", str(a.batch), "--threads", "2", "--primitives",
                               "direct,spatial-pack,winograd,grouped-spatial-pack,pointwise,im2col-gemm"]
    cmd += a.plan_arg
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
    return {"model": a.model, "batch": a.batch, "plan_args": a.plan_arg, "rounds": rounds}


def sides(run, near_x):
    """The run's near and apart rounds by vs_ort.py's rules (tests/vs_ort_rounds.sh), on the
    line round trip alone, and the shortest round trip."""
    rounds = run["rounds"]
    best = [0.0, 0.0, min(min(r["probe_line_ns"]) for r in rounds)]
    return (vs_ort.full_rounds(rounds, best, 0.0, near_x),
            vs_ort.apart_rounds(rounds, best, near_x), best[2])


def node_medians(rounds):
    """{node: (median ms, binding)} over rounds (a node missing from a round is left out)."""
    ms, bound = {}, {}
    for r in rounds:
        for name, (t, binding) in r["nodes"].items():
            ms.setdefault(name, []).append(t)
            bound.setdefault(name, binding)
    return {name: (statistics.median(v), bound[name]) for name, v in ms.items()}


def summary(run, near_x):
    """Per side: (whole plan median ms, rounds, node medians); None where no round was seen."""
    near, apart, shortest = sides(run, near_x)
    out = {"shortest": shortest, "n": len(run["rounds"])}
    for side, rounds in (("near", near), ("apart", apart)):
        out[side] = ((statistics.median(r["ms"] for r in rounds), len(rounds),
                      node_medians(rounds)) if rounds else None)
    return out


def by_binding(nodes):
    """{binding: summed median ms} over a side's nodes."""
    out = {}
    for ms, binding in nodes.values():
        out[binding] = out.get(binding, 0.0) + ms
    return out


def report(run, a, base):
    now = summary(run, a.near)
    print("%s b%d, 2 threads: %d rounds, %d near, %d apart (a line round trip over %.1fx the "
          "shortest, %.0f ns)" % (run.get("model", "?"), run.get("batch", 0), now["n"],
                                  now["near"][1] if now["near"] else 0,
                                  now["apart"][1] if now["apart"] else 0, a.near, now["shortest"]))
    if not now["near"] or not now["apart"]:
        print("placement_profile: the threads were not seen both near and apart; run longer")
        return 0 if run["rounds"] else 1
    (tn, _, near), (ta, _, apart) = now["near"], now["apart"]
    print("whole plan: near %.3f ms, apart %.3f ms, apart/near %.3f" % (tn, ta, ta / tn))
    rows = []
    for name, (mn, binding) in near.items():
        if name in apart:
            ma = apart[name][0]
            rows.append((ma - mn, name, binding, mn, ma))
    rows.sort(reverse=True)
    print("sum of the nodes' growth: %.3f ms" % sum(r[0] for r in rows))
    print("\n| bound to | near ms | apart ms | apart/near |")
    print("|---|---|---|---|")
    bn, ba = by_binding(near), by_binding(apart)
    for binding in sorted(bn, key=lambda b: bn[b] - ba.get(b, 0.0)):
        print("| %s | %.3f | %.3f | %.2f |" % (binding, bn[binding], ba.get(binding, 0.0),
                                               ba.get(binding, 0.0) / bn[binding]
                                               if bn[binding] else 0))
    print("\n| node | bound to | near ms | apart ms | apart/near |")
    print("|---|---|---|---|---|")
    for d, name, binding, mn, ma in rows[:a.top]:
        print("| %s | %s | %.3f | %.3f | %.2f |" % (name, binding, mn, ma, ma / mn if mn else 0))
    if base:
        compare(summary(base, a.near), now, a)
    return 0


def compare(old, new, a):
    """The --compare file beside this run: whole plan and by binding, per side, then the nodes
    whose median moved the most."""
    print("\n--compare (its figures first, this run's second):")
    print("| side | rounds | whole plan ms | by binding, ms |")
    print("|---|---|---|---|")
    for side in ("near", "apart"):
        if not old[side] or not new[side]:
            print("| %s | %s | not seen in both runs | |" % (side, "-"))
            continue
        (to, no, nodes_o), (tn, nn, nodes_n) = old[side], new[side]
        bo, bn = by_binding(nodes_o), by_binding(nodes_n)
        kinds = sorted(set(bo) | set(bn), key=lambda b: -(bn.get(b, 0.0) + bo.get(b, 0.0)))
        print("| %s | %d, %d | %.3f -> %.3f | %s |" % (
            side, no, nn, to, tn,
            ", ".join("%s %.3f -> %.3f" % (b, bo.get(b, 0.0), bn.get(b, 0.0)) for b in kinds)))
    for side in ("near", "apart"):
        if not old[side] or not new[side]:
            continue
        nodes_o, nodes_n = old[side][2], new[side][2]
        moved = sorted(((nodes_n[k][0] - nodes_o[k][0], k) for k in nodes_n if k in nodes_o),
                       key=lambda x: -abs(x[0]))
        print("\n%s: the nodes that moved the most\n| node | bound to (then, now) | ms then | "
              "ms now |\n|---|---|---|---|" % side)
        for d, k in moved[:a.top]:
            print("| %s | %s, %s | %.3f | %.3f |" % (k, nodes_o[k][1], nodes_n[k][1],
                                                     nodes_o[k][0], nodes_n[k][0]))


if __name__ == "__main__":
    sys.exit(main())

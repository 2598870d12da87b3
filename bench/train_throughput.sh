#!/bin/sh
# Training throughput of dlas against PyTorch, in the same run: LeNet-5 and
# ResNet-20 (CIFAR layout) on 1x28x28 inputs, batch 128, SGD with momentum
# and weight decay, synthetic data made once (loading is not timed).
#
#   bench/train_throughput.sh BUILD_DIR [ROUNDS] [THREADS]
#
# BUILD_DIR is a configured and built dlas tree (it holds bench/train_bench
# and plugins.d). The two frameworks alternate ROUNDS times (default 5) so
# that both see the same machine; the table gives medians of images/s and of
# images per CPU-second per thread (the wall clock of a shared machine counts
# other programs' time too), and dlas / PyTorch for each. Run once with the
# environment as it is and once more with OMP_WAIT_POLICY=passive, which both
# frameworks' OpenMP (libgomp) obey: on a loaded machine, spinning threads
# waiting at a barrier take time from the one that is late.
set -eu
build=${1:?usage: bench/train_throughput.sh BUILD_DIR [ROUNDS] [THREADS]}
rounds=${2:-5}
threads=${3:-2}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3 # Debian's python3-torch lives here only
export DLAS_PLUGIN_PATH="$build/plugins.d"
out=$(mktemp)
trap 'rm -f "$out"' EXIT

for policy in default passive; do
    for model in lenet5 resnet20; do
        steps=20
        [ "$model" = lenet5 ] && steps=200
        r=1
        while [ "$r" -le "$rounds" ]; do
            if [ "$policy" = passive ]; then
                set -- env OMP_WAIT_POLICY=passive
            else
                set -- env
            fi
            "$@" "$build/bench/train_bench" --model "$model" --threads "$threads" --batch 128 \
                --steps "$steps" --json | sed "s/^{/{\"policy\": \"$policy\", /" >>"$out"
            "$@" "$py" "$here/train_torch.py" --model "$model" --threads "$threads" --batch 128 \
                --steps "$steps" --json | sed "s/^{/{\"policy\": \"$policy\", /" >>"$out"
            r=$((r + 1))
        done
    done
done

"$py" - "$out" "$threads" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print(f"threads {sys.argv[2]}, batch 128, input 1x28x28; medians over rounds")
print(f"{'model':9} {'OMP wait':8} {'dlas img/s':>11} {'torch img/s':>12} {'ratio':>6}"
      f" {'dlas /cpu-s':>12} {'torch /cpu-s':>13} {'ratio':>6}")
for policy in ("default", "passive"):
    for model in ("lenet5", "resnet20"):
        def med(fw, key):
            v = [r[key] for r in rows if r["policy"] == policy and r["model"] == model
                 and r["framework"] == fw]
            return statistics.median(v) if v else float("nan")
        d, t = med("dlas", "images_per_s"), med("pytorch", "images_per_s")
        dc, tc = med("dlas", "images_per_cpu_s"), med("pytorch", "images_per_cpu_s")
        print(f"{model:9} {policy:8} {d:11.1f} {t:12.1f} {d / t:6.2f} {dc:12.1f} {tc:13.1f}"
              f" {dc / tc:6.2f}")
PY

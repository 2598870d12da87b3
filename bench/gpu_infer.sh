#!/bin/sh
# GPU inference study (issue: a GPU backend): ResNet-18, ResNet-50 and
# MobileNet-v2 at 224x224, batch 1 and 64, fp32 with TF32 off, on the `cuda`
# backend with every GPU primitive and `auto`, against PyTorch eager with
# cudnn.benchmark = True measured in the same run; every GPU primitive per
# layer (own kernels against cuda-cudnn); the CPU primitives per layer at
# batch 1 on the same machine, to find where the best GPU primitive differs
# from the best CPU one. Writes raw outputs under OUT and prints the summary
# (bench/gpu_report.py).
#
#   bench/gpu_infer.sh [BUILD_DIR [OUT_DIR]]      (default: build bench/results/gpu)
#
# Environment: REPEAT (timed runs, default 30), WARMUP (5), CPU_THREADS
# (default: every core), SKIP_CPU=1 to leave out the CPU side, ONLY_CPU=1 to
# run only the CPU side (the GPU results already in OUT are reported with it).
set -u
B=${1:-build}
OUT=${2:-bench/results/gpu}
REPEAT=${REPEAT:-30}
WARMUP=${WARMUP:-5}
mkdir -p "$OUT"
DLAS="$B/dlas"
export DLAS_PLUGIN_PATH="${DLAS_PLUGIN_PATH:-$B/plugins.d}"

models="resnet18:resnet:depth=18 resnet50:resnet:depth=50 mobilenet_v2:mobilenet:version=2"
{
    echo "# $(date -u +%FT%TZ) $(uname -n) load $(cut -d' ' -f1-3 /proc/loadavg)"
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu --format=csv 2>&1
} > "$OUT/machine.txt"

[ "${ONLY_CPU:-0}" = 1 ] || for spec in $models; do
    label=${spec%%:*}; rest=${spec#*:}; plugin=${rest%%:*}; setting=${rest#*:}
    for b in 1 64; do
        d="$OUT/$label-b$b"
        mkdir -p "$d"
        echo "== $label batch $b: cuda primitives, per layer and end to end"
        "$DLAS" compare --model "$plugin" --input 3x224x224 --classes 1000 "$setting" \
            --backend cuda --primitives all --batch "$b" --repeat "$REPEAT" --warmup "$WARMUP" \
            --out "$d" > "$d/compare.txt" 2>&1 || echo "compare failed: see $d/compare.txt"
        tail -n 12 "$d/compare.txt"
    done
done

if [ "${ONLY_CPU:-0}" != 1 ]; then
    echo "== PyTorch eager (cudnn.benchmark, TF32 off) and its CUDA-graph replay"
    python3 bench/gpu_torch.py --batch 1 64 --repeat "$REPEAT" --warmup "$WARMUP" --graph \
        > "$OUT/torch.csv" 2> "$OUT/torch.err" || cat "$OUT/torch.err"
    cat "$OUT/torch.csv"
fi

if [ "${SKIP_CPU:-0}" != 1 ]; then
    for spec in $models; do
        label=${spec%%:*}; rest=${spec#*:}; plugin=${rest%%:*}; setting=${rest#*:}
        d="$OUT/$label-cpu-b1"
        mkdir -p "$d"
        echo "== $label batch 1: cpu primitives per layer"
        "$DLAS" compare --model "$plugin" --input 3x224x224 --classes 1000 "$setting" \
            --backend openmp ${CPU_THREADS:+--threads $CPU_THREADS} --batch 1 --repeat 5 \
            --warmup 1 --layers-only --out "$d" > "$d/compare.txt" 2>&1 ||
            echo "cpu compare failed: see $d/compare.txt"
    done
fi
python3 bench/gpu_report.py "$OUT"

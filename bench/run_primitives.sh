#!/bin/sh
# Every figure of bench/README-primitives.md, in one go, on this machine:
#
#     bench/run_primitives.sh BUILD_DIR [OUT_DIR]
#
# BUILD_DIR is a configured and built dlas tree (`make bench` is run in it);
# OUT_DIR (default: primitives-bench) receives one log per measurement and
# the JSON summaries. Each comparison is one run with its sides interleaved
# (see bench_layers.c and vs_torch.py); check `uptime` first: other work on
# the two cores shows up in the 2-thread figures first.
set -eu
build=$(cd "${1:?usage: bench/run_primitives.sh BUILD_DIR [OUT_DIR]}" && pwd)
out=${2:-primitives-bench}
src=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
make -C "$build" bench >/dev/null
export DLAS_PLUGIN_PATH="$build/plugins.d"
py=/usr/bin/python3 # Debian's interpreter: python3-torch is installed there only
layers="$build/bench/bench_layers"

run() { # name, command...
    name=$1
    shift
    echo "== $name: $*" | tee "$out/$name.log"
    uptime | tee -a "$out/$name.log"
    "$@" 2>&1 | tee -a "$out/$name.log"
}

# ceilings
run peak "$build/bench/bench_peak" --repeat 7 --sizes 2048,4096 --threads 1,2
run peak-haswell env OPENBLAS_CORETYPE=Haswell "$build/bench/bench_peak" --repeat 7 --sizes 2048,4096 --threads 1,2
peak=$(awk '$1 == "fma" && $2 == "zmm" && $4 == 1 { print $5 }' "$out/peak.log")

# 64->64 3x3 on 56x56, 1 thread: every primitive against the peak, and oneDNN
run key-1t "$layers" --threads 1 --repeat 31 --peak "$peak" --layers key \
    direct spatial-pack winograd grouped-spatial-pack im2col-gemm
run key-vs-torch-1t $py "$src/bench/vs_torch.py" layers key --threads 1 --rounds 5 \
    --build "$build" --json "$out/key-vs-torch-1t.json" --prims direct,spatial-pack,winograd,im2col-gemm

# Winograd F(4x4) against im2col-gemm on ResNet-18's 3x3 stride-1 layers
run resnet18-3x3-1t "$layers" --threads 1 --repeat 21 --peak "$peak" --layers resnet18-3x3 \
    winograd winograd:tile=4 winograd:tile=2 im2col-gemm direct

# 2 threads against 1 on the 56x56 and 28x28 layers
run scaling "$layers" --threads 1,2 --repeat 21 --layers \
    64x56x56-64:k3p1,128x28x28-128:k3p1,64x56x56-128:k3s2p1,64x56x56-128:k1s2 \
    direct spatial-pack winograd im2col-gemm

# grouped-spatial-pack against PyTorch: MobileNet-v2's depthwise layers and
# ResNeXt's groups = 32 layers, 1 and 2 threads
for t in 1 2; do
    run dw-vs-torch-${t}t $py "$src/bench/vs_torch.py" layers mobilenetv2-dw --threads $t \
        --rounds 3 --build "$build" --prims grouped-spatial-pack,im2col-gemm \
        --json "$out/dw-vs-torch-${t}t.json"
    run grouped-vs-torch-${t}t $py "$src/bench/vs_torch.py" layers grouped --threads $t \
        --rounds 3 --build "$build" --prims grouped-spatial-pack,direct,im2col-gemm \
        --json "$out/grouped-vs-torch-${t}t.json"
done

# end to end, 2 threads: every primitive and auto (best per layer) against PyTorch
for m in resnet18 cifar-resnet18 mobilenetv2; do
    run e2e-$m-2t $py "$src/bench/vs_torch.py" model $m --threads 2 --rounds 3 --repeat 21 \
        --build "$build" --json "$out/e2e-$m-2t.json"
done
echo "logs in $out"

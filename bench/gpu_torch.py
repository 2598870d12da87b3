#!/usr/bin/env python3
"""PyTorch eager inference on the GPU: the peer of bench/gpu_infer.sh.

torchvision ResNet-18, ResNet-50 and MobileNet-v2 (random weights, eval mode),
fp32 with TF32 off for both cuDNN and cuBLAS, torch.backends.cudnn.benchmark =
True; the input already on the device, times from CUDA events around one
forward, median of --repeat runs after --warmup. With --graph, also the same
forward captured as a CUDA graph and replayed (what dlas's plans do by
default), for reference.

    python3 bench/gpu_torch.py --batch 1 64 --repeat 50 > torch.csv

Writes CSV: model,batch,mode,ms_median,ms_min,ms_max,device,torch,cudnn
"""
import argparse
import statistics
import sys

import torch
import torchvision


def timed(fn, warmup, repeat):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    t = []
    for _ in range(repeat):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        t.append(a.elapsed_time(b))
    return statistics.median(t), min(t), max(t)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=["resnet18", "resnet50", "mobilenet_v2"])
    ap.add_argument("--batch", nargs="+", type=int, default=[1, 64])
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=50)
    ap.add_argument("--graph", action="store_true")
    a = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(0)
    print("model,batch,mode,ms_median,ms_min,ms_max,device,torch,cudnn")
    for m in a.models:
        net = getattr(torchvision.models, m)(weights=None).to(dev).eval()
        for b in a.batch:
            x = torch.randn(b, 3, 224, 224, device=dev)
            with torch.inference_mode():
                med, mn, mx = timed(lambda: net(x), a.warmup, a.repeat)
                print(f"{m},{b},eager,{med:.4f},{mn:.4f},{mx:.4f},{name},{torch.__version__},"
                      f"{torch.backends.cudnn.version()}", flush=True)
                if a.graph:
                    s = torch.cuda.Stream()
                    s.wait_stream(torch.cuda.current_stream())
                    with torch.cuda.stream(s):
                        for _ in range(3):
                            net(x)
                    torch.cuda.current_stream().wait_stream(s)
                    g = torch.cuda.CUDAGraph()
                    with torch.cuda.graph(g):
                        y = net(x)
                    med, mn, mx = timed(g.replay, a.warmup, a.repeat)
                    print(f"{m},{b},cuda-graph,{med:.4f},{mn:.4f},{mx:.4f},{name},"
                          f"{torch.__version__},{torch.backends.cudnn.version()}", flush=True)
        del net
        torch.cuda.empty_cache()


if __name__ == "__main__":
    sys.exit(main())

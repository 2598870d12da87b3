#!/usr/bin/python3
"""PyTorch (oneDNN) inference timings: the peer dlas's primitives are compared with.

Single convolution layers (the same sets and shape syntax as bench/bench_layers.c)
and whole models (torchvision ResNet-18 at 224, the CIFAR ResNet-18 on 32x32 that
dlas's resnet plugin builds for small inputs, torchvision MobileNet-v2 at 224),
each as TorchScript frozen and optimised for inference:

    m = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(m.eval())))

with torch.set_num_threads(T); medians of timed runs after a warm-up.

Run with Debian's interpreter (python3-torch is installed there only):

    /usr/bin/python3 bench/torch_bench.py layers resnet18-3x3 --threads 1
    /usr/bin/python3 bench/torch_bench.py model resnet18 --threads 2

Prints one JSON object per line: {"kind", "name", "shape", "threads", "ms", "min", "max"}.
bench/vs_torch.py imports this module to interleave it with dlas's runs.
"""
import argparse
import json
import re
import statistics
import sys
import time

import torch
import torch.nn as nn
import torchvision

# name, count in the network, shape "CxHxW-O:kK[sS][pP][dD][gG]" (bench/bench_common.c)
MBV2_DW = [
    ("dw32@112", 1, "32x112x112-32:k3p1g32"), ("dw96@112s2", 1, "96x112x112-96:k3s2p1g96"),
    ("dw144@56", 1, "144x56x56-144:k3p1g144"), ("dw144@56s2", 1, "144x56x56-144:k3s2p1g144"),
    ("dw192@28", 2, "192x28x28-192:k3p1g192"), ("dw192@28s2", 1, "192x28x28-192:k3s2p1g192"),
    ("dw384@14", 4, "384x14x14-384:k3p1g384"), ("dw576@14", 2, "576x14x14-576:k3p1g576"),
    ("dw576@14s2", 1, "576x14x14-576:k3s2p1g576"), ("dw960@7", 3, "960x7x7-960:k3p1g960"),
]
SETS = {
    "resnet18": [
        ("conv1", 1, "3x224x224-64:k7s2p3"), ("l1.conv", 4, "64x56x56-64:k3p1"),
        ("l2.0.conv1", 1, "64x56x56-128:k3s2p1"), ("l2.conv", 3, "128x28x28-128:k3p1"),
        ("l2.0.down", 1, "64x56x56-128:k1s2"), ("l3.0.conv1", 1, "128x28x28-256:k3s2p1"),
        ("l3.conv", 3, "256x14x14-256:k3p1"), ("l3.0.down", 1, "128x28x28-256:k1s2"),
        ("l4.0.conv1", 1, "256x14x14-512:k3s2p1"), ("l4.conv", 3, "512x7x7-512:k3p1"),
        ("l4.0.down", 1, "256x14x14-512:k1s2"),
    ],
    "resnet18-3x3": [
        ("l1.conv", 4, "64x56x56-64:k3p1"), ("l2.conv", 3, "128x28x28-128:k3p1"),
        ("l3.conv", 3, "256x14x14-256:k3p1"), ("l4.conv", 3, "512x7x7-512:k3p1"),
    ],
    "mobilenetv2-dw": MBV2_DW,
    "grouped": [
        ("rx.l1", 3, "128x56x56-128:k3p1g32"), ("rx.l2", 4, "256x28x28-256:k3p1g32"),
        ("rx.l3", 6, "512x14x14-512:k3p1g32"), ("rx.l4", 3, "1024x7x7-1024:k3p1g32"),
    ],
    "key": [("key", 1, "64x56x56-64:k3p1")],
}


def parse_shape(s):
    m = re.fullmatch(r"(\d+)x(\d+)x(\d+)-(\d+):?((?:[kspdg]\d+)*)", s)
    if not m:
        raise ValueError("bad shape " + s)
    c, h, w, o = (int(m.group(i)) for i in range(1, 5))
    opts = dict(k=1, s=1, p=0, d=1, g=1)
    for key, val in re.findall(r"([kspdg])(\d+)", m.group(5)):
        opts[key] = int(val)
    return c, h, w, o, opts


def layer_set(spec):
    if spec in SETS:
        return SETS[spec]
    return [("layer%d" % i, 1, s) for i, s in enumerate(spec.split(","))]


def optimise(m, example):
    m = torch.jit.script(m.eval())
    m = torch.jit.freeze(m)
    m = torch.jit.optimize_for_inference(m)
    with torch.no_grad():
        m(example)
    return m


CLOCK = time.perf_counter  # time.process_time with --cpu-time (a development aid)


def time_fn(fn, x, warmup, repeat):
    with torch.no_grad():
        for _ in range(warmup):
            fn(x)
        t = []
        for _ in range(repeat):
            t0 = CLOCK()
            fn(x)
            t.append((CLOCK() - t0) * 1e3)
    return statistics.median(t), min(t), max(t)


class Prepared:
    """A model or layer optimised once, timed as often as asked."""

    def __init__(self, kind, name, shape, module, x):
        self.kind, self.name, self.shape, self.x = kind, name, shape, x
        self.m = optimise(module, x)

    def run(self, threads, warmup, repeat):
        torch.set_num_threads(threads)
        ms, mn, mx = time_fn(self.m, self.x, warmup, repeat)
        return dict(kind=self.kind, name=self.name, shape=self.shape, threads=threads, ms=ms,
                    min=mn, max=mx)


def prepare_layers(spec, batch=1):
    out = []
    for name, _count, shape in layer_set(spec):
        c, h, w, o, k = parse_shape(shape)
        conv = nn.Conv2d(c, o, k["k"], stride=k["s"], padding=k["p"], dilation=k["d"],
                         groups=k["g"], bias=True)
        out.append(Prepared("layer", name, shape, conv, torch.randn(batch, c, h, w)))
    return out


class CifarResNet18(nn.Module):
    """torchvision's ResNet-18 with the 3x3/1 stem and no max pool, as dlas's resnet
    plugin builds it for inputs smaller than 64x64 (kuangliu/pytorch-cifar)."""

    def __init__(self, classes=10):
        super().__init__()
        m = torchvision.models.resnet18(num_classes=classes)
        m.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        m.maxpool = nn.Identity()
        self.m = m

    def forward(self, x):
        return self.m(x)


MODELS = {
    "resnet18": (lambda: torchvision.models.resnet18(num_classes=1000), (3, 224, 224)),
    "cifar-resnet18": (lambda: CifarResNet18(10), (3, 32, 32)),
    "mobilenetv2": (lambda: torchvision.models.mobilenet_v2(num_classes=1000), (3, 224, 224)),
    "resnet50": (lambda: torchvision.models.resnet50(num_classes=1000), (3, 224, 224)),
    "densenet121": (lambda: torchvision.models.densenet121(num_classes=1000), (3, 224, 224)),
}


def prepare_model(name, batch=1):
    make, (c, h, w) = MODELS[name]
    return Prepared("model", name, "%dx%dx%d" % (c, h, w), make(), torch.randn(batch, c, h, w))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("kind", choices=["layers", "model"])
    ap.add_argument("what", help="layer set / shapes, or model name: " + ", ".join(MODELS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--cpu-time", action="store_true",
                    help="time with the process's CPU clock (1 thread on a busy machine)")
    a = ap.parse_args()
    if a.cpu_time:
        global CLOCK
        CLOCK = time.process_time
    torch.set_num_threads(a.threads)
    items = prepare_layers(a.what, a.batch) if a.kind == "layers" else [prepare_model(a.what, a.batch)]
    for it in items:
        print(json.dumps(it.run(a.threads, a.warmup, a.repeat)))
        sys.stdout.flush()


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""Training throughput of LeNet-5 and ResNet-20 in PyTorch, the peer that
bench/train_throughput.sh compares dlas with.

The networks are the ones dlas's lenet5 and resnet plugins build (same
layers, same shapes, torchvision-style option-B shortcuts for ResNet-20), the
optimiser is the one dlas trains with (SGD, momentum 0.9, weight decay 5e-4),
and the data are synthetic tensors made once, so that only forward, loss,
backward and the optimiser step are timed.

Run with Debian's interpreter (/usr/bin/python3): python3-torch is installed
there only.

    /usr/bin/python3 bench/train_torch.py --model resnet20 --threads 2 --batch 128
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet5(nn.Module):
    def __init__(self, c, hw, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        h, w = hw
        self.fc1 = nn.Linear(16 * ((h // 2 - 4) // 2) * ((w // 2 - 4) // 2), 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)), inplace=True)
        y = self.bn2(self.conv2(y))
        s = x if self.downsample is None else self.downsample(x)
        return F.relu(y + s, inplace=True)


class ResNetCifar(nn.Module):
    def __init__(self, depth, c, classes):
        super().__init__()
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(c, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for stage, planes in enumerate((16, 32, 64)):
            blocks = []
            for b in range(n):
                blocks.append(BasicBlock(cin, planes, 2 if (stage > 0 and b == 0) else 1))
                cin = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)), inplace=True)
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=["lenet5", "resnet20"], default="resnet20")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--input", default="1x28x28", help="CxHxW")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps")
    ap.add_argument("--steps", type=int, default=30, help="timed steps")
    ap.add_argument("--json", action="store_true", help="one JSON line on stdout")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    c, h, w = (int(v) for v in a.input.split("x"))
    net = LeNet5(c, (h, w), a.classes) if a.model == "lenet5" else ResNetCifar(20, c, a.classes)
    x = torch.rand(a.batch, c, h, w)
    y = torch.randint(0, a.classes, (a.batch,))
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(a.steps):
        step()
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    ips = a.batch * a.steps / dt
    # On a shared machine the wall clock also counts other programs' time;
    # images per CPU-second per thread tells what the code itself does.
    cips = a.batch * a.steps / (cpu / a.threads) if cpu > 0 else 0.0
    res = {"framework": "pytorch", "version": torch.__version__, "model": a.model,
           "input": a.input, "batch": a.batch, "threads": a.threads, "steps": a.steps,
           "seconds": dt, "images_per_s": ips, "cpu_seconds": cpu, "images_per_cpu_s": cips,
           "mkldnn": bool(torch.backends.mkldnn.is_available())}
    if a.json:
        print(json.dumps(res))
    else:
        print(f"pytorch {torch.__version__} {a.model} {a.input} batch {a.batch} "
              f"threads {a.threads}: {ips:.1f} images/s ({cips:.1f} per CPU-second per thread; "
              f"{a.steps} steps, {dt:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Reference data for check_parity: PyTorch models with random weights.

    /usr/bin/python3 tests/torch_export.py --check
        exit 0 if torch and torchvision import, else print why and exit 3
    /usr/bin/python3 tests/torch_export.py OUTDIR MODEL...
        for each MODEL write OUTDIR/MODEL.ckpt (its state_dict, without
        num_batches_tracked) and OUTDIR/MODEL.io.ckpt ("input": a random
        1x3xHxW batch; "output": the model's eval-mode output in float32;
        "output_f64": the same model and input run in float64), both in the
        dlas checkpoint format of core/include/dlas/checkpoint.h.

Models: torchvision's resnet18, resnet50, vgg16, mobilenet_v2, densenet121 at
224x224 (1000 classes), and WRN-16-2 on 32x32 (10 classes) with each of the
Moonshine / BlockSwap blocks (wrn16_2, wrn16_2_g4, wrn16_2_dw, wrn16_2_b2,
wrn16_2_bg2_4), written here after the papers' code (BayesWatch/pytorch-
moonshine models/blocks.py, wide_resnet.py) since torchvision has no WRN of
that kind.

Weights are random but not trivial: every model is seeded from its name;
batch-norm running statistics are first estimated in training mode on random
inputs (so activations keep a sane scale through 50+ layers) and then
perturbed, BN affine parameters and all biases are drawn at random. Only the
Debian packages python3-torch and python3-torchvision are needed (CPU).
"""
import os
import struct
import sys
import zlib


def check():
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except Exception as e:  # any import failure is a reason to skip
        print("%s: %s" % (type(e).__name__, e))
        return 3
    print("torch %s, torchvision %s" % (torch.__version__, torchvision.__version__))
    return 0


# ---- the dlas checkpoint format (version 1) ---------------------------------

DTYPES = {"float32": 0, "float64": 1, "int8": 2, "uint8": 3, "int32": 4}


def write_checkpoint(path, tensors):
    """tensors: list of (name, numpy array). Little-endian, C order."""
    crcs = []
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        head = b"DLASCKPT" + struct.pack("<III", 1, len(tensors), 0)
        f.write(head + struct.pack("<I", zlib.crc32(head)))
        for name, a in tensors:
            a = a.astype(a.dtype.newbyteorder("<"), copy=False)
            data = a.tobytes(order="C")
            nm = name.encode("utf-8")
            rec = struct.pack("<I", len(nm)) + nm
            rec += struct.pack("<BBH", DTYPES[a.dtype.name], a.ndim, 0)
            rec += struct.pack("<%dq" % a.ndim, *a.shape)
            rec += struct.pack("<QI", len(data), zlib.crc32(data))
            rcrc = zlib.crc32(rec)
            crcs.append(rcrc)
            f.write(rec + struct.pack("<I", rcrc))
            f.write(data)
        allc = b"".join(struct.pack("<I", c) for c in crcs)
        f.write(b"DLASEND\0" + struct.pack("<II", len(tensors), zlib.crc32(allc)))
    os.replace(tmp, path)


# ---- WRN with Moonshine / BlockSwap blocks ----------------------------------

def wrn_classes():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def conv(i, o, k, stride=1, groups=1):
        return nn.Conv2d(i, o, k, stride, (k - 1) // 2, groups=groups, bias=False)

    class Conv(nn.Module):  # a full 3x3
        def __init__(self, i, o, stride, **kw):
            super().__init__()
            self.conv = conv(i, o, 3, stride)

        def forward(self, x):
            return self.conv(x)

    class DConv(nn.Module):  # grouped (or depthwise) 3x3, BN, ReLU, pointwise
        def __init__(self, i, o, stride, groups=None, **kw):
            super().__init__()
            self.convdw = conv(i, i, 3, stride, i if groups is None else groups)
            self.bn = nn.BatchNorm2d(i)
            self.conv1x1 = conv(i, o, 1)

        def forward(self, x):
            return self.conv1x1(F.relu(self.bn(self.convdw(x))))

    class Bottleneck(nn.Module):  # 1x1 down, BN-ReLU, 3x3 (grouped), BN-ReLU, 1x1 up
        def __init__(self, i, o, stride, b=2, groups=1, **kw):
            super().__init__()
            mid = o // b
            self.conv1x1_down = conv(i, mid, 1)
            self.bn1 = nn.BatchNorm2d(mid)
            self.conv = conv(mid, mid, 3, stride, groups)
            self.bn2 = nn.BatchNorm2d(mid)
            self.conv1x1_up = conv(mid, o, 1)

        def forward(self, x):
            x = F.relu(self.bn1(self.conv1x1_down(x)))
            return self.conv1x1_up(F.relu(self.bn2(self.conv(x))))

    class Block(nn.Module):  # pre-activation; Basic (two convs) or Bottle (one)
        def __init__(self, i, o, stride, cv, two, kw):
            super().__init__()
            self.bn1 = nn.BatchNorm2d(i)
            self.conv1 = cv(i, o, stride, **kw)
            self.two = two
            if two:
                self.bn2 = nn.BatchNorm2d(o)
                self.conv2 = cv(o, o, 1, **kw)
            self.equal = i == o
            if not self.equal:
                self.convShortcut = conv(i, o, 1, stride)

        def forward(self, x):
            a = F.relu(self.bn1(x))
            y = self.conv1(a)
            if self.two:
                y = self.conv2(F.relu(self.bn2(y)))
            return (x if self.equal else self.convShortcut(a)) + y

    class NetworkBlock(nn.Module):
        def __init__(self, layers):
            super().__init__()
            self.layer = nn.Sequential(*layers)

        def forward(self, x):
            return self.layer(x)

    class WRN(nn.Module):
        def __init__(self, depth, k, cv, two, classes=10, **kw):
            super().__init__()
            n = (depth - 4) // 6
            w = [16, 16 * k, 32 * k, 64 * k]
            self.conv1 = conv(3, 16, 3)
            for g in range(3):
                layers = [Block(w[g] if i == 0 else w[g + 1], w[g + 1],
                                2 if (g > 0 and i == 0) else 1, cv, two, kw) for i in range(n)]
                setattr(self, "block%d" % (g + 1), nn.ModuleList([NetworkBlock(layers)]))
            self.bn1 = nn.BatchNorm2d(w[3])
            self.fc = nn.Linear(w[3], classes)

        def forward(self, x):
            x = self.conv1(x)
            for g in (self.block1, self.block2, self.block3):
                x = g[0](x)
            x = F.relu(self.bn1(x))
            return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

    return {
        "wrn16_2": lambda: WRN(16, 2, Conv, True),
        "wrn16_2_g4": lambda: WRN(16, 2, DConv, True, groups=4),
        "wrn16_2_dw": lambda: WRN(16, 2, DConv, True),
        "wrn16_2_b2": lambda: WRN(16, 2, Bottleneck, False, b=2),
        "wrn16_2_bg2_4": lambda: WRN(16, 2, Bottleneck, False, b=2, groups=4),
    }


def make(name):
    import torchvision
    if name.startswith("wrn"):
        return wrn_classes()[name](), 32
    try:
        return getattr(torchvision.models, name)(weights=None), 224
    except TypeError:  # torchvision before 0.13
        return getattr(torchvision.models, name)(pretrained=False), 224


def randomise(model, size, gen):
    import torch
    import torch.nn as nn
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            with torch.no_grad():
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
    if bns:
        for m in bns:
            m.reset_running_stats()
            m.momentum = None  # a plain average over the calibration batches
        model.train()
        with torch.no_grad():  # one small batch: the scale matters, not the precision
            model(torch.randn(2, 3, size, size, generator=gen))
        with torch.no_grad():
            for m in bns:
                c = m.num_features
                m.running_var.mul_(torch.empty(c).uniform_(0.7, 1.4, generator=gen))
                m.running_mean.add_(0.1 * m.running_var.sqrt() * torch.randn(c, generator=gen))
                m.weight.copy_(torch.empty(c).uniform_(0.6, 1.4, generator=gen))
                m.bias.copy_(0.1 * torch.randn(c, generator=gen))
    model.eval()


def export(outdir, name):
    import copy
    import torch
    seed = zlib.crc32(name.encode())
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model, size = make(name)
    randomise(model, size, gen)
    x = torch.randn(1, 3, size, size, generator=gen)
    with torch.no_grad():
        y = model(x)
        y64 = copy.deepcopy(model).double()(x.double())
    tensors = [(k, v.detach().cpu().contiguous().numpy())
               for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")]
    write_checkpoint(os.path.join(outdir, name + ".ckpt"), tensors)
    write_checkpoint(os.path.join(outdir, name + ".io.ckpt"),
                     [("input", x.numpy()), ("output", y.numpy()),
                      ("output_f64", y64.numpy())])
    print("%s: %d tensors, input %s, output %s" % (name, len(tensors), tuple(x.shape),
                                                  tuple(y.shape)), flush=True)


def main(argv):
    if len(argv) == 2 and argv[1] == "--check":
        return check()
    if len(argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    rc = check()
    if rc:
        return rc
    import torch
    # One thread: the export runs beside other tests (make -j), where OpenMP
    # threads spinning for a busy core cost far more than they gain.
    torch.set_num_threads(1)
    for name in argv[2:]:
        export(argv[1], name)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/bin/sh
# tools/dlas-torch: a torchvision state_dict becomes a dlas checkpoint that
# the matching dlas model loads strictly (every tensor by name and shape), and
# comes back from dlas to PyTorch unchanged; a compressed model's masks are
# applied on the way out. Skips (77) without Debian's python3-torch.
set -eu
PY=/usr/bin/python3
TOOL="$DLAS_SRCDIR/tools/dlas-torch"
if ! $PY -c 'import torch, torchvision' >/dev/null 2>&1; then
    echo "SKIP: python3-torch and python3-torchvision are not installed"
    exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dlas-torch-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"

# torch -> dlas: the dlas model accepts it strictly
$PY -c '
import torch, torchvision
torch.manual_seed(3)
m = torchvision.models.resnet18(num_classes=10)
torch.save({"state_dict": {"module." + k: v for k, v in m.state_dict().items()}}, "r18.pt")
'
$PY "$TOOL" to-dlas r18.pt r18.ckpt --strip module.
"$DLAS_BIN" checkpoint load r18.ckpt --model resnet --input 3x64x64 --classes 10 depth=18

# dlas -> torch: the same tensors, bit for bit
$PY "$TOOL" to-torch r18.ckpt back.pt
$PY -c '
import torch
a = torch.load("r18.pt")["state_dict"]
b = torch.load("back.pt")
a = {k[len("module."):]: v for k, v in a.items() if not k.endswith("num_batches_tracked")}
assert set(a) == set(b), set(a) ^ set(b)
for k in a:
    assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
print("round trip: %d tensors identical" % len(a))
'

# a .pt file is a pickle: one that names code (here os.system) is refused
# without running it, and says how to read a file one made oneself
$PY -c '
import os, torch
class Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))
torch.save({"state_dict": {"fc.weight": torch.zeros(2, 2)}, "x": Evil()}, "evil.pt")
'
if $PY "$TOOL" to-dlas evil.pt evil.ckpt 2>err.txt; then
    echo "FAIL: a pickle naming code was converted"; exit 1
fi
[ ! -e pwned ] || { echo "FAIL: unpickling evil.pt ran its code"; exit 1; }
[ ! -e evil.ckpt ] || { echo "FAIL: evil.ckpt written"; exit 1; }
grep -q "trust-pickle" err.txt || { cat err.txt; echo "FAIL: no hint"; exit 1; }

# a damaged checkpoint is refused, not converted
cp r18.ckpt bad.ckpt
printf "\001" | dd of=bad.ckpt bs=1 seek=5000 conv=notrunc 2>/dev/null
if $PY "$TOOL" to-torch bad.ckpt bad.pt 2>err.txt; then
    echo "FAIL: a damaged checkpoint was converted"; exit 1
fi
grep -q "CRC mismatch" err.txt
echo "ok"

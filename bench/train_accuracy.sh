#!/bin/sh
# The accuracy runs of the training engine, through `dlas run`:
#   LeNet-5 on Fashion-MNIST, 10 epochs   (bench/train_lenet5_fmnist.cfg; goal >= 90%)
#   ResNet-20 on Fashion-MNIST, 15 epochs (bench/train_resnet20_fmnist.cfg; goal >= 93%)
#
#   bench/train_accuracy.sh DLAS_BINARY [WORKDIR]
#
# Each writes WORKDIR/results/<name>/ (results.csv, and models/*.csv with
# one row per epoch: train loss and accuracy, test loss, top-1 and top-5,
# seconds, images/s). A killed run, started again, resumes from its last
# checkpoint. ResNet-20 takes half an hour or more on two cores.
# OMP_WAIT_POLICY=passive keeps a run from wasting time on a shared machine.
set -eu
dlas=${1:?usage: bench/train_accuracy.sh DLAS_BINARY [WORKDIR]}
work=${2:-.}
here=$(cd "$(dirname "$0")" && pwd)
cd "$work"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
for cfg in train_lenet5_fmnist train_resnet20_fmnist; do
    "$dlas" run "$here/$cfg.cfg"
    name=$(echo "$cfg" | tr _ -)
    for csv in results/"$name"/models/*.csv; do
        echo "== $csv"
        cat "$csv"
    done
done

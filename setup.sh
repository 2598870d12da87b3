#!/bin/sh
# One-step set-up on Debian 12: install the packages dlas needs (as root, only
# those missing), generate the build system, configure and build in ./build.
# Extra arguments go to configure (e.g. --enable-sanitizers).
set -eu
cd "$(dirname "$0")"

PACKAGES="build-essential autoconf automake libtool pkg-config \
libconfig-dev libopenblas-openmp-dev check zlib1g-dev libjpeg62-turbo-dev libpng-dev \
dataset-fashion-mnist gnuplot-nox \
openmpi-bin libopenmpi-dev"

missing=""
for p in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing Debian packages:$missing" >&2
        echo "setup: run as root, or: sudo apt-get install$missing" >&2
        exit 1
    fi
    echo "setup: installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing
fi

# Debian's default OpenBLAS is the pthread build, which fights OpenMP regions;
# make sure the OpenMP build is the one the loader finds.
alt=/usr/lib/x86_64-linux-gnu/openblas-openmp/libopenblas.so.0
if [ -e "$alt" ] && [ "$(id -u)" -eq 0 ]; then
    update-alternatives --set libopenblas.so.0-x86_64-linux-gnu "$alt" >/dev/null 2>&1 || true
fi

[ -x configure ] && [ configure -nt configure.ac ] || autoreconf -fi
mkdir -p build
cd build
if [ ! -f Makefile ] || [ ../configure -nt Makefile ] || [ $# -gt 0 ]; then
    ../configure -q "$@"
fi
make -s -j"$(nproc)"
echo "setup: built in $(pwd); try: build/dlas plugins"

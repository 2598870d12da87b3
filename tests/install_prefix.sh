#!/bin/sh
# A --prefix given to setup.sh after a first build: `make install` must work
# without `make clean` (libtool records libdir in every .la, and the plugin
# folder is compiled into libdlas), the installed dlas must find its own
# plugins, and an out-of-tree plugin (examples/plugin-template) must build
# against the prefix with pkg-config, install into its plugin folder and be
# listed by the installed dlas.
#
#   tests/install_prefix.sh [DIR]    default DIR: _inst in the source tree
#
# Run by .ci/run after the default build (it reconfigures build/ for DIR).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
inst=${1:-$top/_inst}
case $inst in /*) ;; *) inst=$(pwd)/$inst ;; esac
cd "$top"
[ -f build/Makefile ] || { echo "install-prefix: FAIL: no build/ (run ./setup.sh first)"; exit 1; }
log=$(mktemp)
tpl=$(mktemp -d)
trap 'rm -rf "$log" "$tpl"' EXIT
fail() { cat "$log"; echo "install-prefix: FAIL: $*"; exit 1; }

rm -rf "$inst"
./setup.sh --prefix="$inst" >"$log" 2>&1 || fail "./setup.sh --prefix=$inst"
make -C build -s install >"$log" 2>&1 || fail "make install after reconfiguring (no make clean)"
unset DLAS_PLUGIN_PATH
"$inst/bin/dlas" plugins --verbose >"$log" 2>&1 || fail "$inst/bin/dlas plugins"
grep -q "$inst/lib/dlas/" "$log" || fail "the installed dlas does not load its plugins from $inst/lib/dlas"

cp -R examples/plugin-template/. "$tpl/"
chmod -R u+w "$tpl"
export PKG_CONFIG_PATH="$inst/lib/pkgconfig"
make -s -C "$tpl" install >"$log" 2>&1 || fail "out-of-tree plugin (pkg-config dlas from $inst)"
[ -f "$inst/lib/dlas/random_prune.so" ] || fail "the plugin was not installed into pkg-config's pluginsdir"
"$inst/bin/dlas" plugins --kind compressor >"$log" 2>&1 || fail "dlas plugins with the new plugin"
grep -q 'random-prune' "$log" || fail "the installed dlas does not list the out-of-tree plugin"
echo "install-prefix: PASS: reinstalled into $inst without make clean; out-of-tree plugin built, installed, listed"

#!/bin/sh
# Install dlas into a staging prefix, build examples/plugin-template against
# it with pkg-config, and check that the installed dlas lists and runs it.
set -eu
: "${DLAS_BUILDDIR:?run through make check}" "${DLAS_SRCDIR:?run through make check}"
stage=$(mktemp -d "${TMPDIR:-/tmp}/dlas-stage-XXXXXX")
trap 'rm -rf "$stage"' EXIT

make -s -C "$DLAS_BUILDDIR" install DESTDIR="$stage" >"$stage/install.log" 2>&1 || {
    cat "$stage/install.log"; echo "FAIL: make install"; exit 1; }
pcfile=$(find "$stage" -name dlas.pc | head -n 1)
[ -n "$pcfile" ] || { echo "FAIL: dlas.pc was not installed"; exit 1; }
prefix=$(sed -n 's/^prefix=//p' "$pcfile")
libdir=$(dirname "$(dirname "$pcfile")")
bindir="$stage$prefix/bin"
[ -f "$stage$prefix/include/dlas/plugin.h" ] || { echo "FAIL: headers not installed"; exit 1; }
[ -d "$libdir/dlas" ] && ls "$libdir/dlas"/*.so >/dev/null || { echo "FAIL: plugins not installed"; exit 1; }

cp -R "$DLAS_SRCDIR/examples/plugin-template" "$stage/tpl"
chmod -R u+w "$stage/tpl"
PKG_CONFIG_PATH="$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$stage" \
    make -s -C "$stage/tpl" >"$stage/tpl.log" 2>&1 || { cat "$stage/tpl.log"; echo "FAIL: template build"; exit 1; }

export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export DLAS_PLUGIN_PATH="$libdir/dlas:$stage/tpl"
"$bindir/dlas" plugins --kind compressor >"$stage/plugins.out"
grep -q 'random-prune' "$stage/plugins.out" || { cat "$stage/plugins.out"; echo "FAIL: not listed"; exit 1; }
grep -q 'fraction' "$stage/plugins.out" || { echo "FAIL: parameters not listed"; exit 1; }

cat >"$stage/exp.cfg" <<'CFG'
experiment = { repeat = 2; warmup = 0; eval_samples = 8; output = { dir = "out"; }; };
dataset = { plugin = "synthetic"; test_size = 8; };
models = { lenet = { plugin = "lenet5"; }; };
compressors = { rand = ( { plugin = "random-prune"; fraction = 0.4; } ); };
primitives = { im = { plugin = "im2col-gemm"; }; };
backends = { omp = { plugin = "openmp"; threads = 1; }; };
CFG
(cd "$stage" && "$bindir/dlas" run --no-progress exp.cfg) >"$stage/run.out" 2>&1 || {
    cat "$stage/run.out"; echo "FAIL: dlas run with the template plugin"; exit 1; }
grep -q 'random_prune.pruned' "$stage/out/results.csv" || { cat "$stage/out/results.csv"; echo "FAIL: no report"; exit 1; }
status=$(grep -o '"status": "[a-z]*"' "$stage/out/results.json" | head -n 1)
sparsity=$(grep -o '"sparsity": [0-9.e-]*' "$stage/out/results.json" | head -n 1 | sed 's/.*: //')
[ "$status" = '"status": "ok"' ] || { cat "$stage/out/results.json"; echo "FAIL: point did not run"; exit 1; }
case "$sparsity" in
    0.3*|0.4*) ;;
    *) echo "FAIL: unexpected sparsity: $sparsity"; exit 1 ;;
esac

# A channel pruner out of tree: its own score, the core's loop, and the
# parameters every pruner shares from <dlas/prune.h>.
mkdir "$stage/chan"
cat >"$stage/chan/chan_prune.c" <<'C'
#include <dlas/prune.h>

/* the lowest channel index first: a deterministic criterion */
static int score(void *st, struct dlas_compress_ctx *ctx, const struct dlas_prune_units *u,
                 double *s)
{
    (void)st, (void)ctx;
    for (int64_t i = 0; i < u->n; i++)
        s[i] = (double)u->u[i].channel;
    return DLAS_OK;
}

static int apply(struct dlas_compress_ctx *ctx, const struct dlas_params *p)
{
    struct dlas_prune_options o;
    int rc = dlas_prune_options_from_params(&o, p, "chan-prune");
    if (rc)
        return rc;
    struct dlas_pruner pr = {sizeof pr, "chan_prune", NULL, NULL, score, NULL, NULL};
    return dlas_prune_run(ctx, &pr, &o);
}

static const struct dlas_param_spec params[] = {
    DLAS_PRUNE_PARAMS_GOAL,
    DLAS_PRUNE_PARAMS_STEPS("0", 0, "training steps between pruning steps"),
    DLAS_PRUNE_PARAMS_RUN,
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
static const struct dlas_compressor_ops ops = {sizeof ops, apply};
static const struct dlas_component components[] = {
    {sizeof(struct dlas_component), DLAS_KIND_COMPRESSOR, "chan-prune", "lowest channels first",
     "none", params, &ops}};
DLAS_PLUGIN("chan-prune", "1.0", "an out-of-tree channel pruner", components)
C
sed 's/random_prune/chan_prune/g' "$stage/tpl/Makefile" >"$stage/chan/Makefile"
PKG_CONFIG_PATH="$libdir/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$stage" \
    make -s -C "$stage/chan" >"$stage/chan.log" 2>&1 || { cat "$stage/chan.log"; echo "FAIL: channel pruner build"; exit 1; }
export DLAS_PLUGIN_PATH="$DLAS_PLUGIN_PATH:$stage/chan"
"$bindir/dlas" help chan-prune >"$stage/chan.help" 2>&1 || { cat "$stage/chan.help"; echo "FAIL: dlas help chan-prune"; exit 1; }
grep -q 'channels_per_step' "$stage/chan.help" || { cat "$stage/chan.help"; echo "FAIL: shared pruning parameters not listed"; exit 1; }
sed -e 's/plugin = "random-prune"; fraction = 0.4;/plugin = "chan-prune"; ratio = 0.8;/' \
    -e 's/dir = "out"/dir = "chan-out"/' "$stage/exp.cfg" >"$stage/chan.cfg"
(cd "$stage" && "$bindir/dlas" run --no-progress chan.cfg) >"$stage/chan.out" 2>&1 || {
    cat "$stage/chan.out"; echo "FAIL: dlas run with the out-of-tree channel pruner"; exit 1; }
removed=$(grep -o '"chan_prune.channels_removed": [0-9]*' "$stage/chan-out/results.json" | sed 's/.*: //')
[ "${removed:-0}" -gt 0 ] || { cat "$stage/chan-out/results.json"; echo "FAIL: the channel pruner removed nothing"; exit 1; }
echo "PASS: template plugin built out of tree, listed and run ($sparsity); a channel pruner on <dlas/prune.h>'s shared parameters removed $removed channels"

#!/bin/sh
# `mpirun -n K dlas run FILE`: the rows (ids, configurations, accuracies,
# agreement with the reference) are those of a serial run, each written once;
# killing a rank mid-sweep loses only what was running, leaves no point
# process behind, and a rerun completes the set with no row lost or
# duplicated. A dlas built without MPI under mpirun runs the sweep on rank 0
# alone (same rows). Skips (77) without mpirun.
set -eu
command -v mpirun >/dev/null 2>&1 || { echo "SKIP: no mpirun (Debian: openmpi-bin)"; exit 77; }
[ -x /usr/bin/python3 ] || { echo "SKIP: no /usr/bin/python3 to read the results"; exit 77; }
# CI runs as root; Open MPI refuses root without these
OMPI_ALLOW_RUN_AS_ROOT=1; OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
DLAS=${DLAS_BIN:-build/dlas}
# under the sanitizers, Open MPI's own allocations are not reported as leaks
LSAN_OPTIONS="suppressions=${DLAS_SRCDIR:-.}/tests/lsan-mpi.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export LSAN_OPTIONS
# ... but Open MPI unloads its components (mca_*.so) at MPI_Finalize, so what
# they keep is reported from "<unknown module>", which no suppression can
# name: leak checking is off in the ranks. The serial run below keeps it (the
# sweep, the runner and the results writer are the same code).
RANKS_ASAN="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
mpirun_ranks() { ASAN_OPTIONS="$RANKS_ASAN" mpirun "$@"; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/dlas-mpi-XXXXXX")
mark="dlas-mpi-test-$$"
export DLAS_MPI_TEST_MARK="$mark" # finds this test's processes by their environment
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
have_mpi=yes
"$DLAS" --version | grep -q '^MPI: none' && have_mpi=no

# 2 seeds x (none, 2 sparsities) x 2 primitives = 12 points; each seed's
# trained model is shared by 6 of them (the model cache)
cat >sweep.cfg <<'EOF'
experiment = { name = "mpi"; seeds = [1, 2]; warmup = 1; repeat = 40; batch = 16;
               eval_samples = 128; output = { dir = "out"; }; };
dataset = { plugin = "synthetic"; channels = 1; height = 28; width = 28; classes = 4;
            train_size = 256; test_size = 128; };
models = { lenet = { plugin = "lenet5"; }; };
train = { epochs = 1; batch = 32; lr = 0.05; };
compressors = { none = (); mag = ( { plugin = "magnitude"; sparsity = [0.5, 0.8]; } ); };
primitives = { im2col = { plugin = "im2col-gemm"; }; direct = { plugin = "direct"; }; };
backends = { omp = { plugin = "openmp"; threads = 1; }; };
EOF

# id, config hash, status, accuracy, agreement, non-zeros, training loss:
# what must not depend on where a point ran (not the timings)
rows() {
    /usr/bin/python3 - "$1" <<'PY'
import csv, sys
ids = []
for r in csv.DictReader(open(sys.argv[1])):
    ids.append(r["cell_id"])
    print(r["cell_id"], r["config_hash"], r["status"], r["accuracy_top1"],
          r["max_rel_err_vs_ref"], r["nonzero_params"], r["train_loss"])
assert len(ids) == len(set(ids)), "a row written twice"
PY
}

"$DLAS" -q run --no-progress sweep.cfg -o serial >/dev/null
rows serial/results.csv | sort >serial.rows
test "$(wc -l <serial.rows)" -eq 12

# the same sweep over two ranks (one serving, one running points)
mpirun_ranks -n 2 --oversubscribe "$DLAS" -q run --no-progress sweep.cfg -o two >two.out 2>two.err ||
    { cat two.err; exit 1; }
rows two/results.csv | sort >two.rows
diff serial.rows two.rows
if [ "$have_mpi" = no ]; then
    grep -q "built without MPI" two.err
    echo "ok: without MPI, rank 0 ran the sweep alone (same 12 rows)"
    exit 0
fi
grep -q "^12 ran" two.out

# three ranks; kill rank 1 once a few rows are written
# (a plain command, so that $! is mpirun itself)
ASAN_OPTIONS="$RANKS_ASAN" mpirun -n 3 --oversubscribe "$DLAS" run --no-progress sweep.cfg -o killed \
    >killed.out 2>killed.err &
job=$!
# rank 1: the child of mpirun whose environment says so
rank1=""
for _ in $(seq 1 600); do
    for p in $(pgrep -P "$job"); do
        { tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" &&
            rank1=$p
    done
    [ -n "$rank1" ] && break
    sleep 0.1
done
for _ in $(seq 1 600); do
    n=$(($( { wc -l <killed/results.csv; } 2>/dev/null || echo 1) - 1))
    [ "$n" -ge 1 ] && break
    sleep 0.1
done
test -n "$rank1" || { echo "rank 1 not found"; cat killed.err; exit 1; }
at_kill=$(($(wc -l <killed/results.csv) - 1))
kill -9 "$rank1"
wait "$job" || true # Open MPI ends the job when a rank dies
before=$(($(wc -l <killed/results.csv) - 1))
echo "killed rank 1 (pid $rank1) at $at_kill rows; $before of 12 rows written when the job ended"
test "$before" -lt 12 # else the kill came too late to test anything
# no point process outlives its rank
sleep 1
for p in $(pgrep -f dlas); do
    { tr '\0' '\n' <"/proc/$p/environ"; } 2>/dev/null | grep -qx "DLAS_MPI_TEST_MARK=$mark" ||
        continue
    echo "left behind: $(tr '\0' ' ' <"/proc/$p/cmdline")"
    exit 1
done
# the rows written are whole and each once; a rerun completes the set
rows killed/results.csv >/dev/null
mpirun_ranks -n 3 --oversubscribe "$DLAS" -q run --no-progress sweep.cfg -o killed >rerun.out 2>rerun.err ||
    { cat rerun.err; exit 1; }
grep -q "already done" rerun.out
rows killed/results.csv | sort >killed.rows
diff serial.rows killed.rows
/usr/bin/python3 - <<'PY'
import csv, json
c = list(csv.DictReader(open("killed/results.csv")))
j = json.load(open("killed/results.json"))
j = j["rows"] if isinstance(j, dict) else j
assert [r["cell_id"] for r in c] == [r["cell_id"] for r in j], "CSV and JSON disagree"
PY
echo "ok: mpirun -n 2 rows = serial rows; killed at $before/12 rows, rerun completed 12, none twice"

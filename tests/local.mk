# Check suites. Each runs against the plugins gathered in plugins.d.
# Tests wait passively for OpenMP work (unless the caller says otherwise): spinning
# threads starve each other when the suites run side by side on a loaded machine.
AM_TESTS_ENVIRONMENT = \
	DLAS_PLUGIN_PATH='$(abs_top_builddir)/plugins.d'; export DLAS_PLUGIN_PATH; \
	DLAS_FIXTURES='$(abs_top_builddir)/tests/fixtures/.libs'; export DLAS_FIXTURES; \
	DLAS_SRCDIR='$(abs_top_srcdir)'; export DLAS_SRCDIR; \
	DLAS_BUILDDIR='$(abs_top_builddir)'; export DLAS_BUILDDIR; \
	DLAS_BIN='$(abs_top_builddir)/dlas'; export DLAS_BIN; \
	CK_DEFAULT_TIMEOUT=600; export CK_DEFAULT_TIMEOUT; \
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-passive}; export OMP_WAIT_POLICY; \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1; export ASAN_OPTIONS; \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1; export UBSAN_OPTIONS;

TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS) $(OPENMP_CFLAGS)
TEST_LDADD = tests/libtestutil.la libdlas.la $(CHECK_LIBS) -lm

# The Check suites: each adds itself to CHECK_SUITES below, with its flags
# (its source is tests/NAME.c unless it names others). What they share
# (tests/testutil.h) is a convenience library, built once.
CHECK_SUITES =
if HAVE_CHECK
check_PROGRAMS += $(CHECK_SUITES)
TESTS += $(CHECK_SUITES)
check_LTLIBRARIES += tests/libtestutil.la
endif
tests_libtestutil_la_SOURCES = tests/testutil.c tests/testutil.h tests/random_graph.c \
	tests/random_graph.h
tests_libtestutil_la_CFLAGS = $(TEST_CFLAGS)

# The slowest suites come first, slowest first (as timed under the
# sanitizers with DLAS_TEST_SUBSET, CI's setting): under make -jN they start
# first, so that none of them is left running alone at the end. Their flags
# are in their own sections below.
CHECK_SUITES += tests/check_experiment tests/check_zoo tests/check_conformance \
	tests/check_students tests/check_compare tests/check_plan_random tests/check_train tests/check_surgery \
	tests/check_mask tests/check_graph tests/check_loader tests/check_params
if HAVE_CHECK
TESTS += tests/plugin_template.sh
endif
dist_noinst_SCRIPTS += tests/plugin_template.sh

# The layering rules of README's Layout, shown to fail on planted violations.
TESTS += tests/layering.sh
dist_noinst_SCRIPTS += tests/layering.sh
# libdlas exports the public API only.
TESTS += tests/exports.sh
dist_noinst_SCRIPTS += tests/exports.sh

tests_check_loader_CFLAGS = $(TEST_CFLAGS)
tests_check_loader_LDADD = $(TEST_LDADD)
tests_check_params_CFLAGS = $(TEST_CFLAGS) $(LIBCONFIG_CFLAGS)
# check_params tests the libconfig reader (core/plugin/cfgparams.h), which
# libdlas does not export: it links the layers statically.
tests_check_params_LDADD = tests/libtestutil.la $(DLAS_STATIC) $(CHECK_LIBS)
tests_check_graph_CFLAGS = $(TEST_CFLAGS)
tests_check_graph_LDADD = $(TEST_LDADD)
tests_check_conformance_CFLAGS = $(TEST_CFLAGS)
tests_check_conformance_LDADD = $(TEST_LDADD)
tests_check_experiment_CFLAGS = $(TEST_CFLAGS)
tests_check_experiment_LDADD = $(TEST_LDADD)

# The data pipeline, and the dataset plugins on files written by the test.
CHECK_SUITES += tests/check_data tests/check_datasets
tests_check_data_CFLAGS = $(TEST_CFLAGS)
tests_check_data_LDADD = $(TEST_LDADD)
tests_check_datasets_CFLAGS = $(TEST_CFLAGS) $(ZLIB_CFLAGS) $(JPEG_CFLAGS) $(LIBPNG_CFLAGS)
tests_check_datasets_LDADD = $(TEST_LDADD) $(ZLIB_LIBS) $(JPEG_LIBS) $(LIBPNG_LIBS)

# Graph surgery (channel removal, block replacement) and checkpoints.
CHECK_SUITES += tests/check_checkpoint # (and check_surgery, above)
tests_check_surgery_CFLAGS = $(TEST_CFLAGS)
tests_check_surgery_LDADD = $(TEST_LDADD)
tests_check_checkpoint_CFLAGS = $(TEST_CFLAGS) $(ZLIB_CFLAGS)
tests_check_checkpoint_LDADD = $(TEST_LDADD) $(ZLIB_LIBS)

# The model zoo: exact parameter counts, structure, a forward of each model;
# parity with PyTorch (exit 77, SKIP, when /usr/bin/python3 lacks torch).
CHECK_SUITES += tests/check_parity # (and check_zoo, above)
EXTRA_DIST += tests/torch_export.py
tests_check_zoo_CFLAGS = $(TEST_CFLAGS)
tests_check_zoo_LDADD = $(TEST_LDADD)
tests_check_parity_CFLAGS = $(TEST_CFLAGS)
tests_check_parity_LDADD = $(TEST_LDADD)

# The plan's fusion and per-layer control, the tuning log and tuner, and
# the side-by-side comparison of primitives.
# (check_compare is in CHECK_SUITES above)
tests_check_compare_CFLAGS = $(TEST_CFLAGS)
tests_check_compare_LDADD = $(TEST_LDADD)
tests_check_plan_random_CFLAGS = $(TEST_CFLAGS)
tests_check_plan_random_LDADD = $(TEST_LDADD)

# Loader fixtures: plugins that are broken on purpose. -rpath makes libtool
# build real shared modules rather than convenience archives.
FIXTURE_LDFLAGS = -module -avoid-version -shared -rpath /nowhere $(SAN_LDFLAGS)
if HAVE_CHECK
check_LTLIBRARIES += tests/fixtures/fx_good.la tests/fixtures/fx_nosym.la \
	tests/fixtures/fx_abi.la tests/fixtures/fx_dup.la tests/fixtures/fx_badkind.la \
	tests/fixtures/fx_crash.la tests/fixtures/fx_oldprim.la
endif
tests_fixtures_fx_good_la_SOURCES = tests/fixtures/fx_good.c
tests_fixtures_fx_good_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_fx_good_la_LIBADD = libdlas.la
tests_fixtures_fx_nosym_la_SOURCES = tests/fixtures/fx_nosym.c
tests_fixtures_fx_nosym_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_fx_abi_la_SOURCES = tests/fixtures/fx_abi.c
tests_fixtures_fx_abi_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_fx_dup_la_SOURCES = tests/fixtures/fx_dup.c
tests_fixtures_fx_dup_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_fx_dup_la_LIBADD = libdlas.la
tests_fixtures_fx_badkind_la_SOURCES = tests/fixtures/fx_badkind.c
tests_fixtures_fx_badkind_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_fx_crash_la_SOURCES = tests/fixtures/fx_crash.c
tests_fixtures_fx_crash_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_fx_oldprim_la_SOURCES = tests/fixtures/fx_oldprim.c
tests_fixtures_fx_oldprim_la_LDFLAGS = $(FIXTURE_LDFLAGS)
# a primitive with a bug on purpose, for the agreement check (check_results)
if HAVE_CHECK
check_LTLIBRARIES += tests/fixtures/fx_wrong.la
endif
tests_fixtures_fx_wrong_la_SOURCES = tests/fixtures/fx_wrong.c
tests_fixtures_fx_wrong_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_fx_wrong_la_LIBADD = libdlas.la

# Training: gradient checks of every op, losses, SGD, resume after SIGKILL.
# (check_train is in CHECK_SUITES above)
tests_check_train_CFLAGS = $(TEST_CFLAGS)
tests_check_train_LDADD = $(TEST_LDADD)
if HAVE_CHECK
check_LTLIBRARIES += tests/fixtures/fx_finetune.la
endif
tests_fixtures_fx_finetune_la_SOURCES = tests/fixtures/fx_finetune.c
tests_fixtures_fx_finetune_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_fx_finetune_la_LIBADD = libdlas.la

# `make install` relinks the modules and libdlas inside the build tree, so the
# template test (which installs into a staging prefix) must run after every
# other test has finished with them. (Named through a variable so that
# automake still generates the log's own rule.)
TEMPLATE_TEST_LOG = tests/plugin_template.sh.log
$(TEMPLATE_TEST_LOG): $(patsubst %,%.log,$(filter-out tests/plugin_template.sh,$(TESTS)))

# Result files: tidy columns, CSV/JSON agreement, damaged files, full disk.
CHECK_SUITES += tests/check_results
tests_check_results_SOURCES = tests/check_results.c tests/testutil.h core/exp/exp_timing.c \
	core/exp/exp_probe.c core/base/fma_loop.c core/base/line_trip.c
tests_check_results_CFLAGS = $(TEST_CFLAGS) $(OPENMP_CFLAGS) -I$(srcdir)/core/exp
tests_check_results_LDADD = $(TEST_LDADD)

# dlas plot / dlas report on fixed results, with hostile names.
CHECK_SUITES += tests/check_plot
tests_check_plot_CFLAGS = $(TEST_CFLAGS)
tests_check_plot_LDADD = $(TEST_LDADD)

# tools/dlas-torch: state_dicts to dlas checkpoints and back (skips without torch).
TESTS += tests/torch_convert.sh
dist_noinst_SCRIPTS += tests/torch_convert.sh

# bench/ort_report.py: the ten cells of the ONNX Runtime comparison as a figure.
TESTS += tests/ort_report.sh
dist_noinst_SCRIPTS += tests/ort_report.sh
# bench/vs_ort.py: which rounds count as the whole machine with its threads near.
TESTS += tests/vs_ort_rounds.sh
dist_noinst_SCRIPTS += tests/vs_ort_rounds.sh
# bench/placement_profile.py: near and apart medians by node and binding, --compare.
TESTS += tests/placement_profile.sh
dist_noinst_SCRIPTS += tests/placement_profile.sh

# Fisher saliency and the latency compressors measure (ABI 1.3).
CHECK_SUITES += tests/check_saliency
if HAVE_CHECK
check_LTLIBRARIES += tests/fixtures/fx_latency.la
endif
tests_check_saliency_CFLAGS = $(TEST_CFLAGS)
tests_check_saliency_LDADD = $(TEST_LDADD)
tests_fixtures_fx_latency_la_SOURCES = tests/fixtures/fx_latency.c
tests_fixtures_fx_latency_la_LDFLAGS = $(FIXTURE_LDFLAGS)
tests_fixtures_fx_latency_la_LIBADD = libdlas.la

# Masking channels and removing masked ones: same output as removal.
# (check_mask is in CHECK_SUITES above)
tests_check_mask_CFLAGS = $(TEST_CFLAGS)
tests_check_mask_LDADD = $(TEST_LDADD)

# The pruning compressors on constructed cases with known answers.
CHECK_SUITES += tests/check_prune
tests_check_prune_CFLAGS = $(TEST_CFLAGS)
tests_check_prune_LDADD = $(TEST_LDADD)

# Int8 quantisation: arithmetic, calibration rules, the quant-int8 compressor,
# the fake-quantised reference forward, checkpoints.
CHECK_SUITES += tests/check_quant
tests_check_quant_SOURCES = tests/check_quant.c tests/testutil.h \
	compressors/quant-int8/calib.c compressors/quant-int8/calib.h
tests_check_quant_CFLAGS = $(TEST_CFLAGS)
tests_check_quant_LDADD = $(TEST_LDADD) -lm

# Int8 primitives: bit-exact against the integer reference, within a step of
# the fake-quantised fp32 layer, and through the plan (exit 77 without VNNI).
CHECK_SUITES += tests/check_int8
tests_check_int8_CFLAGS = $(TEST_CFLAGS)
tests_check_int8_LDADD = $(TEST_LDADD) -lm

# The cuda backend and GPU primitives on the device (exit 77, SKIP, without
# the plugins, a driver or a GPU).
CHECK_SUITES += tests/check_cuda
tests_check_cuda_CFLAGS = $(TEST_CFLAGS)
tests_check_cuda_LDADD = $(TEST_LDADD)

# Every micro-kernel instance of core/kernels against a scalar loop (linked
# statically: the kernels are not part of libdlas's API).
CHECK_SUITES += tests/check_kernels
tests_check_kernels_SOURCES = tests/check_kernels.c tests/eltwise_cases.h
tests_check_kernels_CFLAGS = $(TEST_CFLAGS)
tests_check_kernels_LDADD = core/kernels/libdlas_kernels.la $(CHECK_LIBS) $(OPENMP_CFLAGS) -lm

# Students by block substitution: cheap block types, moonshine, blockswap, hakd.
# (check_students is in CHECK_SUITES above)
tests_check_students_SOURCES = tests/check_students.c tests/testutil.h
tests_check_students_CFLAGS = $(TEST_CFLAGS)
tests_check_students_LDADD = $(TEST_LDADD)

# The fuzz harnesses of tests/fuzz/ without libFuzzer, in every build's
# `make check` (and so under ASan/UBSan in CI's sanitized distcheck): each
# replays its committed corpus and a fixed set of truncations and edits of it
# (tests/fuzz/replay.c).
FUZZ_REPLAYS = tests/fuzz_replay_config tests/fuzz_replay_dataset \
	tests/fuzz_replay_checkpoint tests/fuzz_replay_tunelog tests/fuzz_replay_results
check_PROGRAMS += $(FUZZ_REPLAYS)
TESTS += $(FUZZ_REPLAYS)
FUZZ_REPLAY_DEPS = tests/fuzz/replay.c tests/fuzz/fuzz_common.h
tests_fuzz_replay_config_SOURCES = $(FUZZ_REPLAY_DEPS)
tests_fuzz_replay_config_CFLAGS = $(AM_CFLAGS) -DFUZZ_NAME=config
tests_fuzz_replay_config_LDADD = libdlas.la
tests_fuzz_replay_dataset_SOURCES = $(FUZZ_REPLAY_DEPS)
tests_fuzz_replay_dataset_CFLAGS = $(AM_CFLAGS) -DFUZZ_NAME=dataset
tests_fuzz_replay_dataset_LDADD = libdlas.la
tests_fuzz_replay_checkpoint_SOURCES = $(FUZZ_REPLAY_DEPS)
tests_fuzz_replay_checkpoint_CFLAGS = $(AM_CFLAGS) -DFUZZ_NAME=checkpoint
tests_fuzz_replay_checkpoint_LDADD = libdlas.la
tests_fuzz_replay_tunelog_SOURCES = $(FUZZ_REPLAY_DEPS)
tests_fuzz_replay_tunelog_CFLAGS = $(AM_CFLAGS) -DFUZZ_NAME=tunelog
tests_fuzz_replay_tunelog_LDADD = libdlas.la
tests_fuzz_replay_results_SOURCES = $(FUZZ_REPLAY_DEPS)
tests_fuzz_replay_results_CFLAGS = $(AM_CFLAGS) -DFUZZ_NAME=results
tests_fuzz_replay_results_LDADD = libdlas.la

# Fuzzing (libFuzzer, Debian's clang) and memcheck, each in its own build
# tree beside this one: `make fuzz` runs every harness of tests/fuzz/ for
# FUZZ_SECONDS (60) on its committed corpus; `make check-valgrind` runs the
# core suites under valgrind (built without AVX-512) and wants zero errors and
# zero leaks.
.PHONY: fuzz check-valgrind
fuzz:
	FUZZ_SECONDS=$${FUZZ_SECONDS:-60} $(SHELL) $(top_srcdir)/tests/fuzz/run.sh
check-valgrind:
	$(SHELL) $(top_srcdir)/tests/valgrind.sh
# (the fuzz folder's files by name, not the folder: the build tree has a
# tests/fuzz/ of its own, of the replays' objects, that dist would pack too)
EXTRA_DIST += tests/fuzz/run.sh tests/fuzz/lsan.supp tests/fuzz/fuzz_checkpoint.c \
	tests/fuzz/fuzz_config.c tests/fuzz/fuzz_dataset.c tests/fuzz/fuzz_results.c \
	tests/fuzz/fuzz_tunelog.c tests/fuzz/corpus
EXTRA_DIST += tests/valgrind.sh tests/valgrind.supp tests/install_prefix.sh

# `mpirun -n K dlas run`: the rows of a serial run, each once; a killed rank
# loses only unfinished points (skips without mpirun).
TESTS += tests/mpi_sweep.sh
dist_noinst_SCRIPTS += tests/mpi_sweep.sh
EXTRA_DIST += tests/lsan-mpi.supp

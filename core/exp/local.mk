# core/exp: experiment parsing, the point pipeline, results, reports. Reads
# libconfig.
noinst_LTLIBRARIES += core/exp/libdlas_exp.la
core_exp_libdlas_exp_la_SOURCES = \
	core/exp/exp_compare.c \
	core/exp/cfgscan.c \
	core/exp/cfgscan.h \
	core/exp/exp_internal.h \
	core/exp/exp_auto.c \
	core/exp/exp_auto.h \
	core/exp/exp_latency.c \
	core/exp/exp_latency.h \
	core/exp/exp_models.c \
	core/exp/exp_probe.c \
	core/exp/exp_probe.h \
	core/exp/exp_train.c \
	core/exp/exp_train.h \
	core/exp/experiment.c \
	core/exp/report.c \
	core/exp/results.c \
	core/exp/results.h \
	core/exp/results_row.c \
	core/exp/results_csv.c \
	core/exp/results_json.c \
	core/exp/exp_columns.c \
	core/exp/exp_timing.c \
	core/exp/exp_timing.h \
	core/exp/exp_weights.c \
	core/exp/exp_paths.c \
	core/exp/runner.c \
	core/exp/sweep.c
core_exp_libdlas_exp_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) $(LIBCONFIG_CFLAGS)

noinst_PROGRAMS += bench/bench_data
bench_bench_data_SOURCES = bench/bench_data.c
bench_bench_data_CFLAGS = $(AM_CFLAGS) $(JPEG_CFLAGS)
bench_bench_data_LDADD = libdlas.la $(JPEG_LIBS)

# Convolution primitive benchmarks (see bench/README-primitives.md). Built
# with `make bench`; not installed, not run by `make check`.
EXTRA_PROGRAMS = bench/bench_layers bench/bench_peak bench/bench_sparse bench/bench_handoff
BENCH_PRIM_PROGS = bench/bench_layers bench/bench_peak bench/bench_sparse bench/bench_handoff
# The bench programs read layer shapes in the syntax of `dlas tune --layers`.
BENCH_COMMON = bench/bench_common.c bench/bench_common.h core/cli/conv_shape.c \
	core/cli/conv_shape.h
BENCH_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/core/cli
bench_bench_layers_SOURCES = bench/bench_layers.c $(BENCH_COMMON)
bench_bench_layers_CPPFLAGS = $(BENCH_CPPFLAGS)
bench_bench_layers_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) -O2
bench_bench_layers_LDADD = libdlas.la $(OPENMP_CFLAGS) -lm
bench_bench_sparse_SOURCES = bench/bench_sparse.c $(BENCH_COMMON)
bench_bench_sparse_CPPFLAGS = $(BENCH_CPPFLAGS)
bench_bench_sparse_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_sparse_LDADD = libdlas.la -lm
bench_bench_peak_SOURCES = bench/bench_peak.c core/base/fma_loop.c core/base/fma_loop.h \
	core/base/line_trip.c core/base/line_trip.h $(BENCH_COMMON)
bench_bench_peak_CPPFLAGS = $(BENCH_CPPFLAGS)
bench_bench_peak_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) $(OPENBLAS_CFLAGS) -O2
bench_bench_peak_LDADD = libdlas.la $(OPENBLAS_LIBS) $(OPENMP_CFLAGS) -lm
# What two threads pay to hand data to each other, near and apart.
bench_bench_handoff_SOURCES = bench/bench_handoff.c core/base/line_trip.c core/base/line_trip.h
bench_bench_handoff_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) -O2
bench_bench_handoff_LDADD = $(OPENMP_CFLAGS)
EXTRA_DIST += bench/torch_bench.py bench/vs_torch.py bench/run_primitives.sh bench/run_sparse.sh \
	bench/README-primitives.md bench/README-sparse.md
bench: $(BENCH_PRIM_PROGS)
.PHONY: bench
CLEANFILES += $(BENCH_PRIM_PROGS)

# Training throughput (bench/train_throughput.sh compares it with PyTorch).
noinst_PROGRAMS += bench/train_bench
bench_train_bench_SOURCES = bench/train_bench.c
bench_train_bench_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS)
bench_train_bench_LDADD = libdlas.la -lm
EXTRA_DIST += bench/train_torch.py bench/train_throughput.sh bench/train_accuracy.sh \
	bench/train_lenet5_fmnist.cfg bench/train_resnet20_fmnist.cfg bench/README-train.md

# Int8 primitives against fp32 on single layers (bench/README-int8.md).
EXTRA_PROGRAMS += bench/bench_int8
BENCH_PRIM_PROGS += bench/bench_int8
bench_bench_int8_SOURCES = bench/bench_int8.c $(BENCH_COMMON)
bench_bench_int8_CPPFLAGS = $(BENCH_CPPFLAGS)
bench_bench_int8_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_int8_LDADD = libdlas.la -lm
EXTRA_PROGRAMS += bench/bench_int8_model
BENCH_PRIM_PROGS += bench/bench_int8_model
bench_bench_int8_model_SOURCES = bench/bench_int8_model.c $(BENCH_COMMON)
bench_bench_int8_model_CPPFLAGS = $(BENCH_CPPFLAGS)
bench_bench_int8_model_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_int8_model_LDADD = libdlas.la -lm
EXTRA_DIST += bench/int8_vs_torch.py bench/int8_accuracy.cfg bench/README-int8.md

# ONNX Runtime peer (bench/README-ort.md): bench/vs_ort.py drives bench_plan
# (the dlas side, kept prepared) and bench/ort_bench.js (onnxruntime-node).
noinst_PROGRAMS += bench/bench_plan
bench_bench_plan_SOURCES = bench/bench_plan.c core/base/fma_loop.c core/base/fma_loop.h \
	core/base/line_trip.c core/base/line_trip.h $(BENCH_COMMON)
bench_bench_plan_CPPFLAGS = $(BENCH_CPPFLAGS)
bench_bench_plan_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) -O2
bench_bench_plan_LDADD = libdlas.la $(OPENMP_CFLAGS) -lm
EXTRA_DIST += bench/vs_ort.py bench/ort_bench.js bench/README-ort.md bench/scale_threads.py \
	bench/plan_ab.py bench/ort_layers.py bench/ort_report.py bench/placement_profile.py
# what libgomp's waiting costs a plan-like run of regions (a standalone program)
EXTRA_DIST += bench/omp_wait.c

# What masking channels costs a pruner, a call at a time (bench_mask --help).
noinst_PROGRAMS += bench/bench_mask
bench_bench_mask_SOURCES = bench/bench_mask.c $(BENCH_COMMON)
bench_bench_mask_CPPFLAGS = $(BENCH_CPPFLAGS)
bench_bench_mask_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_mask_LDADD = libdlas.la -lm

# The Fashion-MNIST subset the example configs' headers write (bench/fmnist_subset.py).
EXTRA_DIST += bench/fmnist_subset.py

# Before/after comparison of two builds, the GPU harnesses (bench/README-gpu.md)
# and the students' Spearman summary (examples/students-fisher-proxy.cfg).
EXTRA_DIST += bench/before_after.sh bench/before_after_report.py bench/gpu_infer.sh \
	bench/gpu_report.py bench/gpu_torch.py bench/README-gpu.md bench/students_spearman.py

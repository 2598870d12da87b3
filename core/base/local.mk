# core/base: errors, log, rng, tensors, small utilities, system info, progress.
# (sysinfo reports the BLAS build, hence the OpenBLAS headers.)
noinst_LTLIBRARIES += core/base/libdlas_base.la
core_base_libdlas_base_la_SOURCES = \
	core/base/conv_desc.c \
	core/base/error.c \
	core/base/file.c \
	core/base/fma_loop.c \
	core/base/fma_loop.h \
	core/base/line_trip.c \
	core/base/line_trip.h \
	core/base/heartbeat.c \
	core/base/heartbeat.h \
	core/base/hugepages.h \
	core/base/log.c \
	core/base/progress.c \
	core/base/progress.h \
	core/base/rng.c \
	core/base/sysinfo.c \
	core/base/sysinfo.h \
	core/base/tensor.c \
	core/base/util.c \
	core/base/util.h
core_base_libdlas_base_la_CFLAGS = $(AM_CFLAGS) $(OPENBLAS_CFLAGS) $(OPENMP_CFLAGS)

# core/kernels: the optimised compute shared by the trainer and the CPU
# primitives (packing, micro-kernels, direct/cvec/cols convolution). Pure
# compute; linked statically into libdlas and into each primitive that uses
# it, never exported.
noinst_LTLIBRARIES += core/kernels/libdlas_kernels.la
core_kernels_libdlas_kernels_la_SOURCES = \
	core/kernels/arena.c \
	core/kernels/conv_cols.c \
	core/kernels/conv_cols.h \
	core/kernels/conv_cvec.c \
	core/kernels/conv_cvec.h \
	core/kernels/conv_direct.c \
	core/kernels/conv_direct.h \
	core/kernels/direct_block.c \
	core/kernels/mbconv.c \
	core/kernels/mbconv.h \
	core/kernels/eltwise.c \
	core/kernels/eltwise.h \
	core/kernels/head.c \
	core/kernels/head.h \
	core/kernels/microkernels.c \
	core/kernels/pack.c \
	core/kernels/pc_kernels.h \
	core/kernels/pw_kernels.c \
	core/kernels/pw_kernels.h \
	core/kernels/stem.c \
	core/kernels/stem.h
core_kernels_libdlas_kernels_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) -O3

if HAVE_CUDA
pkglib_LTLIBRARIES += primitives/cuda-direct/primitive_cuda_direct.la
endif
primitives_cuda_direct_primitive_cuda_direct_la_SOURCES = primitives/cuda-direct/direct.c \
	primitives/cuda-direct/kernels.cu primitives/cuda-direct/kernels.h
primitives_cuda_direct_primitive_cuda_direct_la_CFLAGS = $(AM_CFLAGS) $(CUDA_CFLAGS)
primitives_cuda_direct_primitive_cuda_direct_la_LDFLAGS = $(PLUGIN_LDFLAGS)
primitives_cuda_direct_primitive_cuda_direct_la_LIBADD = $(PLUGIN_LIBADD) $(CUDA_LIBS)
EXTRA_DIST += primitives/cuda-direct/README.md

if HAVE_CUDA
pkglib_LTLIBRARIES += primitives/cuda-winograd/primitive_cuda_winograd.la
endif
primitives_cuda_winograd_primitive_cuda_winograd_la_SOURCES = \
	primitives/cuda-winograd/winograd.c primitives/cuda-winograd/kernels.cu \
	primitives/cuda-winograd/kernels.h
primitives_cuda_winograd_primitive_cuda_winograd_la_CFLAGS = $(AM_CFLAGS) $(CUDA_CFLAGS)
primitives_cuda_winograd_primitive_cuda_winograd_la_LDFLAGS = $(PLUGIN_LDFLAGS)
primitives_cuda_winograd_primitive_cuda_winograd_la_LIBADD = $(PLUGIN_LIBADD) $(CUDA_LIBS) -lcublas
EXTRA_DIST += primitives/cuda-winograd/README.md

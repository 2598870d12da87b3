if HAVE_CUDA
pkglib_LTLIBRARIES += primitives/cuda-depthwise/primitive_cuda_depthwise.la
endif
primitives_cuda_depthwise_primitive_cuda_depthwise_la_SOURCES = \
	primitives/cuda-depthwise/depthwise.c primitives/cuda-depthwise/kernels.cu \
	primitives/cuda-depthwise/kernels.h
primitives_cuda_depthwise_primitive_cuda_depthwise_la_CFLAGS = $(AM_CFLAGS) $(CUDA_CFLAGS)
primitives_cuda_depthwise_primitive_cuda_depthwise_la_LDFLAGS = $(PLUGIN_LDFLAGS)
primitives_cuda_depthwise_primitive_cuda_depthwise_la_LIBADD = $(PLUGIN_LIBADD) $(CUDA_LIBS)
EXTRA_DIST += primitives/cuda-depthwise/README.md

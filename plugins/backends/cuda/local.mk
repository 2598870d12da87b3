if HAVE_CUDA
pkglib_LTLIBRARIES += plugins/backends/cuda/backend_cuda.la
endif
plugins_backends_cuda_backend_cuda_la_SOURCES = plugins/backends/cuda/cuda.c \
	plugins/backends/cuda/nodes.c plugins/backends/cuda/backend.h \
	plugins/backends/cuda/kernels.cu plugins/backends/cuda/kernels.h
plugins_backends_cuda_backend_cuda_la_CFLAGS = $(AM_CFLAGS) $(CUDA_CFLAGS)
plugins_backends_cuda_backend_cuda_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_backends_cuda_backend_cuda_la_LIBADD = $(PLUGIN_LIBADD) $(CUDA_LIBS) -lcublas -lcudnn -lm
EXTRA_DIST += plugins/backends/cuda/README.md

if HAVE_CUDA
pkglib_LTLIBRARIES += primitives/cuda-cudnn/primitive_cuda_cudnn.la
endif
primitives_cuda_cudnn_primitive_cuda_cudnn_la_SOURCES = primitives/cuda-cudnn/cudnn_conv.c \
	primitives/cuda-cudnn/epilogue.cu primitives/common/cuda_prim.h \
	primitives/common/cuda_epilogue.cuh
primitives_cuda_cudnn_primitive_cuda_cudnn_la_CFLAGS = $(AM_CFLAGS) $(CUDA_CFLAGS)
primitives_cuda_cudnn_primitive_cuda_cudnn_la_LDFLAGS = $(PLUGIN_LDFLAGS)
primitives_cuda_cudnn_primitive_cuda_cudnn_la_LIBADD = $(PLUGIN_LIBADD) $(CUDA_LIBS) -lcudnn
EXTRA_DIST += primitives/cuda-cudnn/README.md

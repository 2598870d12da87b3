if HAVE_CUDA
pkglib_LTLIBRARIES += primitives/cuda-im2col-gemm/primitive_cuda_im2col_gemm.la
endif
primitives_cuda_im2col_gemm_primitive_cuda_im2col_gemm_la_SOURCES = \
	primitives/cuda-im2col-gemm/im2col_gemm.c primitives/cuda-im2col-gemm/kernels.cu \
	primitives/cuda-im2col-gemm/kernels.h
primitives_cuda_im2col_gemm_primitive_cuda_im2col_gemm_la_CFLAGS = $(AM_CFLAGS) $(CUDA_CFLAGS)
primitives_cuda_im2col_gemm_primitive_cuda_im2col_gemm_la_LDFLAGS = $(PLUGIN_LDFLAGS)
primitives_cuda_im2col_gemm_primitive_cuda_im2col_gemm_la_LIBADD = $(PLUGIN_LIBADD) $(CUDA_LIBS) -lcublas
EXTRA_DIST += primitives/cuda-im2col-gemm/README.md

pkglib_LTLIBRARIES += primitives/im2col-gemm/primitive_im2col_gemm.la
primitives_im2col_gemm_primitive_im2col_gemm_la_SOURCES = primitives/im2col-gemm/im2col_gemm.c \
	primitives/common/prim_common.c primitives/common/prim_common.h
primitives_im2col_gemm_primitive_im2col_gemm_la_CFLAGS = $(AM_CFLAGS) $(OPENBLAS_CFLAGS) $(OPENMP_CFLAGS) -O3
primitives_im2col_gemm_primitive_im2col_gemm_la_LDFLAGS = $(PLUGIN_LDFLAGS)
primitives_im2col_gemm_primitive_im2col_gemm_la_LIBADD = $(PLUGIN_LIBADD) core/kernels/libdlas_kernels.la $(OPENBLAS_LIBS) $(OPENMP_CFLAGS)
EXTRA_DIST += primitives/im2col-gemm/README.md

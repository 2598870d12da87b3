pkglib_LTLIBRARIES += primitives/sparse-gemm/primitive_sparse_gemm.la
primitives_sparse_gemm_primitive_sparse_gemm_la_SOURCES = \
	primitives/sparse-gemm/sparse_gemm.c \
	primitives/common/prim_common.c primitives/common/prim_common.h \
	primitives/common/sparse.c primitives/common/sparse.h
primitives_sparse_gemm_primitive_sparse_gemm_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) -O3
primitives_sparse_gemm_primitive_sparse_gemm_la_LDFLAGS = $(PLUGIN_LDFLAGS)
primitives_sparse_gemm_primitive_sparse_gemm_la_LIBADD = $(PLUGIN_LIBADD) $(OPENMP_CFLAGS)
EXTRA_DIST += primitives/sparse-gemm/README.md

pkglib_LTLIBRARIES += primitives/sparse-direct/primitive_sparse_direct.la
primitives_sparse_direct_primitive_sparse_direct_la_SOURCES = \
	primitives/sparse-direct/sparse_direct.c \
	primitives/common/prim_common.c primitives/common/prim_common.h \
	primitives/common/sparse.c primitives/common/sparse.h
primitives_sparse_direct_primitive_sparse_direct_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) -O3 $(NO_LDP_CFLAGS)
primitives_sparse_direct_primitive_sparse_direct_la_LDFLAGS = $(PLUGIN_LDFLAGS)
primitives_sparse_direct_primitive_sparse_direct_la_LIBADD = $(PLUGIN_LIBADD) $(OPENMP_CFLAGS)
EXTRA_DIST += primitives/sparse-direct/README.md

pkglib_LTLIBRARIES += primitives/direct/primitive_direct.la
primitives_direct_primitive_direct_la_SOURCES = primitives/direct/direct.c \
	primitives/direct/planes.c primitives/direct/planes.h \
	primitives/common/prim_common.c primitives/common/prim_common.h \
	primitives/common/blocked.c
primitives_direct_primitive_direct_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) -O3
primitives_direct_primitive_direct_la_LDFLAGS = $(PLUGIN_LDFLAGS)
primitives_direct_primitive_direct_la_LIBADD = $(PLUGIN_LIBADD) core/kernels/libdlas_kernels.la $(OPENMP_CFLAGS)
EXTRA_DIST += primitives/direct/README.md primitives/common/README.md \
	primitives/common/conv_ops.h

pkglib_LTLIBRARIES += primitives/pointwise/primitive_pointwise.la
primitives_pointwise_primitive_pointwise_la_SOURCES = primitives/pointwise/pointwise.c \
	primitives/pointwise/pw_gemm.c primitives/pointwise/pw_gemm.h \
	primitives/common/prim_common.c primitives/common/prim_common.h
primitives_pointwise_primitive_pointwise_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) -O3
primitives_pointwise_primitive_pointwise_la_LDFLAGS = $(PLUGIN_LDFLAGS)
primitives_pointwise_primitive_pointwise_la_LIBADD = $(PLUGIN_LIBADD) $(OPENMP_CFLAGS)
EXTRA_DIST += primitives/pointwise/README.md

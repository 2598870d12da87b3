pkglib_LTLIBRARIES += primitives/winograd/primitive_winograd.la
primitives_winograd_primitive_winograd_la_SOURCES = primitives/winograd/winograd.c \
	primitives/winograd/wino_transform.c primitives/winograd/wino_transform.h \
	primitives/common/prim_common.c primitives/common/prim_common.h
primitives_winograd_primitive_winograd_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) -O3
primitives_winograd_primitive_winograd_la_LDFLAGS = $(PLUGIN_LDFLAGS)
primitives_winograd_primitive_winograd_la_LIBADD = $(PLUGIN_LIBADD) core/kernels/libdlas_kernels.la $(OPENMP_CFLAGS)
EXTRA_DIST += primitives/winograd/README.md

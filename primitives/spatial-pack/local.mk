pkglib_LTLIBRARIES += primitives/spatial-pack/primitive_spatial_pack.la
primitives_spatial_pack_primitive_spatial_pack_la_SOURCES = primitives/spatial-pack/spatial_pack.c \
	primitives/common/prim_common.c primitives/common/prim_common.h \
	primitives/common/blocked.c
primitives_spatial_pack_primitive_spatial_pack_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) -O3
primitives_spatial_pack_primitive_spatial_pack_la_LDFLAGS = $(PLUGIN_LDFLAGS)
primitives_spatial_pack_primitive_spatial_pack_la_LIBADD = $(PLUGIN_LIBADD) core/kernels/libdlas_kernels.la $(OPENMP_CFLAGS)
EXTRA_DIST += primitives/spatial-pack/README.md

pkglib_LTLIBRARIES += primitives/grouped-spatial-pack/primitive_grouped_spatial_pack.la
primitives_grouped_spatial_pack_primitive_grouped_spatial_pack_la_SOURCES = \
	primitives/grouped-spatial-pack/gsp.c primitives/grouped-spatial-pack/gsp.h \
	primitives/grouped-spatial-pack/gsp_kernels.c \
	primitives/common/prim_common.c primitives/common/prim_common.h
primitives_grouped_spatial_pack_primitive_grouped_spatial_pack_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) -O3
primitives_grouped_spatial_pack_primitive_grouped_spatial_pack_la_LDFLAGS = $(PLUGIN_LDFLAGS)
primitives_grouped_spatial_pack_primitive_grouped_spatial_pack_la_LIBADD = $(PLUGIN_LIBADD) core/kernels/libdlas_kernels.la $(OPENMP_CFLAGS)
EXTRA_DIST += primitives/grouped-spatial-pack/README.md

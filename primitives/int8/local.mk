pkglib_LTLIBRARIES += primitives/int8/primitive_int8.la
primitives_int8_primitive_int8_la_SOURCES = primitives/int8/int8_conv.c primitives/int8/int8_oc.c \
	primitives/int8/int8_impl.h
primitives_int8_primitive_int8_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) -O3
primitives_int8_primitive_int8_la_LDFLAGS = $(PLUGIN_LDFLAGS)
primitives_int8_primitive_int8_la_LIBADD = $(PLUGIN_LIBADD) $(OPENMP_CFLAGS)
EXTRA_DIST += primitives/int8/README.md

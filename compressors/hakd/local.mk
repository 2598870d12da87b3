pkglib_LTLIBRARIES += compressors/hakd/compressor_hakd.la
compressors_hakd_compressor_hakd_la_SOURCES = compressors/hakd/hakd.c
compressors_hakd_compressor_hakd_la_CFLAGS = $(AM_CFLAGS)
compressors_hakd_compressor_hakd_la_LDFLAGS = $(PLUGIN_LDFLAGS)
compressors_hakd_compressor_hakd_la_LIBADD = $(PLUGIN_LIBADD)
EXTRA_DIST += compressors/hakd/README.md

pkglib_LTLIBRARIES += compressors/magnitude/compressor_magnitude.la
compressors_magnitude_compressor_magnitude_la_SOURCES = compressors/magnitude/magnitude.c
compressors_magnitude_compressor_magnitude_la_CFLAGS = $(AM_CFLAGS)
compressors_magnitude_compressor_magnitude_la_LDFLAGS = $(PLUGIN_LDFLAGS)
compressors_magnitude_compressor_magnitude_la_LIBADD = $(PLUGIN_LIBADD) -lm
EXTRA_DIST += compressors/magnitude/README.md

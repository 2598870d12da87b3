pkglib_LTLIBRARIES += compressors/moonshine/compressor_moonshine.la
compressors_moonshine_compressor_moonshine_la_SOURCES = compressors/moonshine/moonshine.c
compressors_moonshine_compressor_moonshine_la_CFLAGS = $(AM_CFLAGS)
compressors_moonshine_compressor_moonshine_la_LDFLAGS = $(PLUGIN_LDFLAGS)
compressors_moonshine_compressor_moonshine_la_LIBADD = $(PLUGIN_LIBADD)
EXTRA_DIST += compressors/moonshine/README.md

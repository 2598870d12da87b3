pkglib_LTLIBRARIES += compressors/blockswap/compressor_blockswap.la
compressors_blockswap_compressor_blockswap_la_SOURCES = compressors/blockswap/blockswap.c \
	compressors/blockswap/sample.c compressors/blockswap/build.c \
	compressors/blockswap/blockswap.h
compressors_blockswap_compressor_blockswap_la_CFLAGS = $(AM_CFLAGS)
compressors_blockswap_compressor_blockswap_la_LDFLAGS = $(PLUGIN_LDFLAGS)
compressors_blockswap_compressor_blockswap_la_LIBADD = $(PLUGIN_LIBADD) -lm
EXTRA_DIST += compressors/blockswap/README.md

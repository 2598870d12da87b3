pkglib_LTLIBRARIES += compressors/activation/compressor_activation.la
compressors_activation_compressor_activation_la_SOURCES = compressors/activation/activation.c
compressors_activation_compressor_activation_la_CFLAGS = $(AM_CFLAGS)
compressors_activation_compressor_activation_la_LDFLAGS = $(PLUGIN_LDFLAGS)
compressors_activation_compressor_activation_la_LIBADD = $(PLUGIN_LIBADD) -lm
EXTRA_DIST += compressors/activation/README.md

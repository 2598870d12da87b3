pkglib_LTLIBRARIES += compressors/fisher/compressor_fisher.la
compressors_fisher_compressor_fisher_la_SOURCES = compressors/fisher/fisher.c
compressors_fisher_compressor_fisher_la_CFLAGS = $(AM_CFLAGS)
compressors_fisher_compressor_fisher_la_LDFLAGS = $(PLUGIN_LDFLAGS)
compressors_fisher_compressor_fisher_la_LIBADD = $(PLUGIN_LIBADD) -lm
EXTRA_DIST += compressors/fisher/README.md

pkglib_LTLIBRARIES += compressors/finetune/compressor_finetune.la
compressors_finetune_compressor_finetune_la_SOURCES = compressors/finetune/finetune.c
compressors_finetune_compressor_finetune_la_CFLAGS = $(AM_CFLAGS)
compressors_finetune_compressor_finetune_la_LDFLAGS = $(PLUGIN_LDFLAGS)
compressors_finetune_compressor_finetune_la_LIBADD = $(PLUGIN_LIBADD) -lm
EXTRA_DIST += compressors/finetune/README.md

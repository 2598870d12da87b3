pkglib_LTLIBRARIES += compressors/l1-channel/compressor_l1_channel.la
compressors_l1_channel_compressor_l1_channel_la_SOURCES = compressors/l1-channel/l1.c
compressors_l1_channel_compressor_l1_channel_la_CFLAGS = $(AM_CFLAGS)
compressors_l1_channel_compressor_l1_channel_la_LDFLAGS = $(PLUGIN_LDFLAGS)
compressors_l1_channel_compressor_l1_channel_la_LIBADD = $(PLUGIN_LIBADD) -lm
EXTRA_DIST += compressors/l1-channel/README.md

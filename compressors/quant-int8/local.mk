pkglib_LTLIBRARIES += compressors/quant-int8/compressor_quant_int8.la
compressors_quant_int8_compressor_quant_int8_la_SOURCES = compressors/quant-int8/quant_int8.c \
	compressors/quant-int8/calib.c compressors/quant-int8/calib.h
compressors_quant_int8_compressor_quant_int8_la_CFLAGS = $(AM_CFLAGS) -O2
compressors_quant_int8_compressor_quant_int8_la_LDFLAGS = $(PLUGIN_LDFLAGS)
compressors_quant_int8_compressor_quant_int8_la_LIBADD = $(PLUGIN_LIBADD) -lm
EXTRA_DIST += compressors/quant-int8/README.md

pkglib_LTLIBRARIES += plugins/models/wrn/model_wrn.la
plugins_models_wrn_model_wrn_la_SOURCES = plugins/models/wrn/wrn.c \
	plugins/models/wrn/wrn_block.c plugins/models/wrn/wrn.h
plugins_models_wrn_model_wrn_la_CFLAGS = $(AM_CFLAGS)
plugins_models_wrn_model_wrn_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_models_wrn_model_wrn_la_LIBADD = $(PLUGIN_LIBADD)
EXTRA_DIST += plugins/models/wrn/README.md

pkglib_LTLIBRARIES += plugins/models/lenet5/model_lenet5.la
plugins_models_lenet5_model_lenet5_la_SOURCES = plugins/models/lenet5/lenet5.c
plugins_models_lenet5_model_lenet5_la_CFLAGS = $(AM_CFLAGS) 
plugins_models_lenet5_model_lenet5_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_models_lenet5_model_lenet5_la_LIBADD = $(PLUGIN_LIBADD) 
EXTRA_DIST += plugins/models/lenet5/README.md

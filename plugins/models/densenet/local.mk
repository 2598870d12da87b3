pkglib_LTLIBRARIES += plugins/models/densenet/model_densenet.la
plugins_models_densenet_model_densenet_la_SOURCES = plugins/models/densenet/densenet.c
plugins_models_densenet_model_densenet_la_CFLAGS = $(AM_CFLAGS)
plugins_models_densenet_model_densenet_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_models_densenet_model_densenet_la_LIBADD = $(PLUGIN_LIBADD)
EXTRA_DIST += plugins/models/densenet/README.md

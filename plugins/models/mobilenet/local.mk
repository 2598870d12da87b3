pkglib_LTLIBRARIES += plugins/models/mobilenet/model_mobilenet.la
plugins_models_mobilenet_model_mobilenet_la_SOURCES = plugins/models/mobilenet/mobilenet.c
plugins_models_mobilenet_model_mobilenet_la_CFLAGS = $(AM_CFLAGS)
plugins_models_mobilenet_model_mobilenet_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_models_mobilenet_model_mobilenet_la_LIBADD = $(PLUGIN_LIBADD)
EXTRA_DIST += plugins/models/mobilenet/README.md

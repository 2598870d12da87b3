pkglib_LTLIBRARIES += plugins/models/vgg/model_vgg.la
plugins_models_vgg_model_vgg_la_SOURCES = plugins/models/vgg/vgg.c
plugins_models_vgg_model_vgg_la_CFLAGS = $(AM_CFLAGS)
plugins_models_vgg_model_vgg_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_models_vgg_model_vgg_la_LIBADD = $(PLUGIN_LIBADD)
EXTRA_DIST += plugins/models/vgg/README.md

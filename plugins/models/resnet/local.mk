pkglib_LTLIBRARIES += plugins/models/resnet/model_resnet.la
plugins_models_resnet_model_resnet_la_SOURCES = plugins/models/resnet/resnet.c
plugins_models_resnet_model_resnet_la_CFLAGS = $(AM_CFLAGS)
plugins_models_resnet_model_resnet_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_models_resnet_model_resnet_la_LIBADD = $(PLUGIN_LIBADD)
EXTRA_DIST += plugins/models/resnet/README.md

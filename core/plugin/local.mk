# core/plugin: the registry (dlopen), parameters and config validation, the
# host table handed to plugins. Reads libconfig.
noinst_LTLIBRARIES += core/plugin/libdlas_plugin.la
core_plugin_libdlas_plugin_la_SOURCES = \
	core/plugin/cfgparams.c \
	core/plugin/cfgparams.h \
	core/plugin/host.c \
	core/plugin/params.c \
	core/plugin/registry.c
core_plugin_libdlas_plugin_la_CFLAGS = $(AM_CFLAGS) $(LIBCONFIG_CFLAGS)

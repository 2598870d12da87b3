pkglib_LTLIBRARIES += plugins/backends/openmp/backend_openmp.la
plugins_backends_openmp_backend_openmp_la_SOURCES = plugins/backends/openmp/openmp.c
plugins_backends_openmp_backend_openmp_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) $(OPENBLAS_CFLAGS)
plugins_backends_openmp_backend_openmp_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_backends_openmp_backend_openmp_la_LIBADD = $(PLUGIN_LIBADD) $(OPENMP_CFLAGS) $(OPENBLAS_LIBS)
EXTRA_DIST += plugins/backends/openmp/README.md

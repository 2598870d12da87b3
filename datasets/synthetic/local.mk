pkglib_LTLIBRARIES += datasets/synthetic/dataset_synthetic.la
datasets_synthetic_dataset_synthetic_la_SOURCES = datasets/synthetic/synthetic.c
datasets_synthetic_dataset_synthetic_la_CFLAGS = $(AM_CFLAGS) 
datasets_synthetic_dataset_synthetic_la_LDFLAGS = $(PLUGIN_LDFLAGS)
datasets_synthetic_dataset_synthetic_la_LIBADD = $(PLUGIN_LIBADD) -lm
EXTRA_DIST += datasets/synthetic/README.md

pkglib_LTLIBRARIES += datasets/cifar/dataset_cifar.la
datasets_cifar_dataset_cifar_la_SOURCES = datasets/cifar/cifar.c datasets/cifar/cifar.h \
	datasets/cifar/cifar_files.c
datasets_cifar_dataset_cifar_la_CFLAGS = $(AM_CFLAGS)
datasets_cifar_dataset_cifar_la_LDFLAGS = $(PLUGIN_LDFLAGS)
datasets_cifar_dataset_cifar_la_LIBADD = $(PLUGIN_LIBADD) -lm
EXTRA_DIST += datasets/cifar/README.md

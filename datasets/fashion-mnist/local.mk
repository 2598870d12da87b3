pkglib_LTLIBRARIES += datasets/fashion-mnist/dataset_fashion_mnist.la
datasets_fashion_mnist_dataset_fashion_mnist_la_SOURCES = datasets/fashion-mnist/fashion_mnist.c \
	datasets/fashion-mnist/idx.c datasets/fashion-mnist/idx.h
datasets_fashion_mnist_dataset_fashion_mnist_la_CFLAGS = $(AM_CFLAGS) $(ZLIB_CFLAGS)
datasets_fashion_mnist_dataset_fashion_mnist_la_LDFLAGS = $(PLUGIN_LDFLAGS)
datasets_fashion_mnist_dataset_fashion_mnist_la_LIBADD = $(PLUGIN_LIBADD) $(ZLIB_LIBS) -lm
EXTRA_DIST += datasets/fashion-mnist/README.md

pkglib_LTLIBRARIES += datasets/imagefolder/dataset_imagefolder.la
datasets_imagefolder_dataset_imagefolder_la_SOURCES = datasets/imagefolder/imagefolder.c \
	datasets/imagefolder/scan.c datasets/imagefolder/scan.h \
	datasets/imagefolder/decode.c datasets/imagefolder/decode.h \
	datasets/imagefolder/resample.c datasets/imagefolder/resample.h
datasets_imagefolder_dataset_imagefolder_la_CFLAGS = $(AM_CFLAGS) $(JPEG_CFLAGS) $(LIBPNG_CFLAGS)
datasets_imagefolder_dataset_imagefolder_la_LDFLAGS = $(PLUGIN_LDFLAGS)
datasets_imagefolder_dataset_imagefolder_la_LIBADD = $(PLUGIN_LIBADD) $(JPEG_LIBS) $(LIBPNG_LIBS) -lm
EXTRA_DIST += datasets/imagefolder/README.md

# core/data: the data pipeline between dataset plugins and the trainer.
noinst_LTLIBRARIES += core/data/libdlas_data.la
core_data_libdlas_data_la_SOURCES = \
	core/data/data.c \
	core/data/data_batch.c \
	core/data/data_impl.h \
	core/data/data_iter.c \
	core/data/data_stats.c
core_data_libdlas_data_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS)

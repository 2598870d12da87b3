# core/infer: the inference plan, fallbacks, tuning and its log, compare.
noinst_LTLIBRARIES += core/infer/libdlas_infer.la
core_infer_libdlas_infer_la_SOURCES = \
	core/infer/auto_choice.h \
	core/infer/autoselect.c \
	core/infer/compare.c \
	core/infer/fallbacks.c \
	core/infer/fallbacks.h \
	core/infer/plan.c \
	core/infer/plan_blocks.c \
	core/infer/plan_ops.c \
	core/infer/plan_ops.h \
	core/infer/plan_pool_first.c \
	core/infer/plan_prologue.c \
	core/infer/plan_impl.h \
	core/infer/plan_layout.c \
	core/infer/plan_quant.c \
	core/infer/plan_views.c \
	core/infer/tune.c \
	core/infer/tunelog.c
core_infer_libdlas_infer_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) $(OPENBLAS_CFLAGS)

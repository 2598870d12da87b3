# core/train: autograd, backward passes, losses, optimisers, schedules, the
# trainer.
noinst_LTLIBRARIES += core/train/libdlas_train.la
core_train_libdlas_train_la_SOURCES = \
	core/train/autograd.c \
	core/train/ag_gemm.h \
	core/train/autograd_impl.h \
	core/train/backward_bn.c \
	core/train/backward_conv.c \
	core/train/backward_elem.c \
	core/train/backward_linear.c \
	core/train/backward_pool.c \
	core/train/distil.c \
	core/train/fisher_potential.c \
	core/train/loss.c \
	core/train/optim.c \
	core/train/prune_options.c \
	core/train/prune_run.c \
	core/train/saliency.c \
	core/train/schedule.c \
	core/train/train.c \
	core/train/train_ckpt.c \
	core/train/train_eval.c \
	core/train/train_impl.h \
	core/train/train_log.c \
	core/train/train_opts.c \
	core/train/train_steps.c
core_train_libdlas_train_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) $(OPENBLAS_CFLAGS)

# core/graph: the graph, builders, reference operators (the test oracle; never
# includes kernels/), metrics, surgery, checkpoints.
noinst_LTLIBRARIES += core/graph/libdlas_graph.la
core_graph_libdlas_graph_la_SOURCES = \
	core/graph/block_types.c \
	core/graph/build.c \
	core/graph/checkpoint.c \
	core/graph/checkpoint_graph.c \
	core/graph/graph.c \
	core/graph/graph_build.c \
	core/graph/graph_impl.h \
	core/graph/metrics.c \
	core/graph/ops_ref.c \
	core/graph/probe.c \
	core/graph/probe.h \
	core/graph/residual_blocks.c \
	core/graph/prune_target.c \
	core/graph/prune_units.c \
	core/graph/quant.c \
	core/graph/surgery_block.c \
	core/graph/surgery_groups.c \
	core/graph/surgery_mask.c \
	core/graph/surgery_prune.c \
	core/graph/surgery_ties.c \
	core/graph/surgery_ties.h
core_graph_libdlas_graph_la_CFLAGS = $(AM_CFLAGS) $(OPENMP_CFLAGS) $(ZLIB_CFLAGS)

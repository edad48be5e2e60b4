"""The layer-sequential engine's building blocks the op families share: its configuration and
instruction plans, datapath bounds, and descriptor helpers. Families describe their layers with
these; the engine's own machinery (program order, arena, timing, resources) stays in the mapper
and the code generator."""

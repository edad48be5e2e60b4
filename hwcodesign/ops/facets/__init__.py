"""The facet interfaces an op family implements: one module per facet (lowering, golden, and one per architecture)."""

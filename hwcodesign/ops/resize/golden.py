"""Golden semantics: the integer arithmetic the hardware computes for this family's ops."""

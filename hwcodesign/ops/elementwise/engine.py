"""The layer-sequential engine facet: instructions, costs, descriptors."""

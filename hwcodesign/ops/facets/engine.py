"""The engine facet's interface: the layer-sequential engine: instructions, costs, descriptors"""

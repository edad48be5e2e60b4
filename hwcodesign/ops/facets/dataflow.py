"""The dataflow facet's interface: the dataflow pipeline: stage plan, resources and cycles, HLS stage code"""

"""The golden facet's interface: the integer arithmetic the hardware computes, the golden model's definition"""

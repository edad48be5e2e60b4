"""Host/accelerator partitioning: a whole model cut at its quantization boundaries into float
parts the board's CPU runs (before and after) and the integer core the accelerator runs."""

from hwcodesign.partition.load import load_partitioned
from hwcodesign.partition.regions import ACCELERATOR, AFTER, BEFORE, Placement
from hwcodesign.partition.split import HostOptions, Partition, TensorSpec, split_model
from hwcodesign.partition.state import StatePair

__all__ = ["ACCELERATOR", "AFTER", "BEFORE", "HostOptions", "Partition", "Placement", "StatePair", "TensorSpec",
           "load_partitioned", "split_model"]

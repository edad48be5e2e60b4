"""The op registry: one package per op family holding all the compiler knows about its layers.

Import IR op classes from here (`from hwcodesign.ops import Conv`); inside `hwcodesign/ops`
import from the family's own modules instead, so that a family never waits on the registry.
"""

from hwcodesign.ops.channelwise.ir import DepthwiseConv, GlobalAvgPool, Pool
from hwcodesign.ops.concat.ir import Concat
from hwcodesign.ops.conv.ir import Conv, Linear
from hwcodesign.ops.deform.ir import DeformConv
from hwcodesign.ops.elementwise.ir import Act, Add, Mul
from hwcodesign.ops.family import OpFamily
from hwcodesign.ops.refusal import OpUnsupported, Refused
from hwcodesign.ops.registry import FAMILIES, family_of, op_classes
from hwcodesign.ops.resize.ir import Resize
from hwcodesign.ops.route.ir import ChannelPermute, ChannelSlice
from hwcodesign.ops.sparse.ir import SubmanifoldConv
from hwcodesign.ops.table.ir import Lookup, LookupMean

__all__ = [
    "FAMILIES", "Act", "Add", "ChannelPermute", "ChannelSlice", "Concat", "Conv", "DeformConv", "DepthwiseConv",
    "GlobalAvgPool", "Linear", "Lookup", "LookupMean", "Mul", "OpFamily", "OpUnsupported", "Pool", "Refused", "Resize",
    "SubmanifoldConv", "family_of", "op_classes",
]

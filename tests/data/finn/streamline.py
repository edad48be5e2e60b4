"""How the streamlined FINN files here were made (not run by the suite: finn-plus pins other onnx,
onnxruntime and protobuf versions than this project, so it is installed beside it, without its
dependencies, only to write these files):

    pip install --no-deps --target /tmp/finn-site finn-plus==1.6.1
    PYTHONPATH=/tmp/finn-site:.:tests python tests/data/finn/streamline.py tfc w1a1 tests/data/finn/tfc_w1a1_streamlined.onnx

FINN's own flow for a `bnn_pynq` network, as its end-to-end BNN test does: the Brevitas QONNX
export (tests/support/brevitas_models.py, seed 0), qonnx's tidy-up, a ToTensor pre-processing
(uint8 pixels / 255, the input annotated UINT8), ConvertQONNXtoFINN and Streamline. What comes out
is what a FINN user hands over after streamlining: MultiThreshold activations, float initializers
holding integer weights with `finn_datatype` annotations, a final scalar Mul.
"""

import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN
from finn.transformation.streamline import Streamline
from finn.transformation.streamline.reorder import MoveScalarLinearPastInvariants
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.fold_constants import FoldConstants
from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames, RemoveStaticGraphInputs
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes
from qonnx.transformation.merge_onnx_models import MergeONNXModels
from support.brevitas_models import ExportCache
from support.qonnx_reference import IR_VERSION, runnable_node_models

warnings.filterwarnings("ignore")
network, precision, out = sys.argv[1], sys.argv[2], sys.argv[3]
with tempfile.TemporaryDirectory() as tmp, runnable_node_models():
    model = ModelWrapper(str(ExportCache(Path(tmp))(network, precision, "qonnx")))
    model.model.ir_version = IR_VERSION
    for step in (InferShapes(), FoldConstants(), GiveUniqueNodeNames(), GiveReadableTensorNames(), InferDataTypes(),
                 RemoveStaticGraphInputs()):
        model = model.transform(step)
    shape = model.get_tensor_shape(model.graph.input[0].name)
    divide = helper.make_graph(
        [helper.make_node("Div", ["pixels", "full_scale"], ["scaled"], name="ToTensor")], "pre",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("scaled", TensorProto.FLOAT, shape)],
        [numpy_helper.from_array(np.array(255.0, np.float32), "full_scale")])
    pre = ModelWrapper(helper.make_model(divide, opset_imports=[helper.make_opsetid("", 13)], ir_version=IR_VERSION))
    model = model.transform(MergeONNXModels(pre.transform(InferShapes())))
    model.set_tensor_datatype(model.graph.input[0].name, DataType["UINT8"])
    for step in (ConvertQONNXtoFINN(), MoveScalarLinearPastInvariants(), Streamline(), InferDataTypes()):
        model = model.transform(step)
    model.model.ir_version = IR_VERSION
    model.save(out)
print(out, [node.op_type for node in model.graph.node])

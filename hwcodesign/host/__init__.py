"""Host parts of a partitioned model, board side: the executor the generated driver embeds.

`runtime` runs on the board with numpy only (onnxruntime when present) and is copied verbatim into
driver.py; `program` is the tool side (it imports onnx) that turns a host part's ONNX graph into the
numpy executor's program file. This package file imports neither, so importing `runtime` stays light.
"""

"""The drivers: `compile` (ONNX -> project), `simulate` (map, simulate, report) and `search` (the
mixed-precision search), each calling the stages below them in order. Above the architectures
(`hwcodesign.backends`), below the command line and the runtime."""

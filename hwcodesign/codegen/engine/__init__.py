"""The layer-sequential engine's code generation: the program written into params.bin
(`program`) and the model-specific HLS sources around the fixed engine C++ (`sources`)."""

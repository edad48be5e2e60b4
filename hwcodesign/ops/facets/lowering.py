"""The lowering facet's interface: how ONNX nodes become this family's IR ops: a rule per ONNX op type"""

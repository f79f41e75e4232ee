"""Export a model to ONNX, so it runs outside Python (onnxruntime, TensorRT, a browser): `tc.onnx.export`.

Needs the `onnx` package (`pip install tinygrad-cnn[onnx]`); importing this module does not.
"""
from .export import OPSET, export

__all__ = ["export", "OPSET"]

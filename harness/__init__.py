"""phi3-harness: benchmarking and validation of local Phi-3 inference on ONNX Runtime."""

__version__ = "0.1.0"

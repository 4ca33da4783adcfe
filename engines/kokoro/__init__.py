"""Kokoro-82M (v1.0 int8 ONNX) through kokoro-onnx, with trained weights from the package index."""

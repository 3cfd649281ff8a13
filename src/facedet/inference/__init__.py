"""Running a trained model: [`FaceDetector`][facedet.inference.detector.FaceDetector] with its PyTorch and
ONNX Runtime backends, and the ONNX export ([`facedet.inference.onnx`][])."""

# Pictures larger than a model's scan size are scanned again at larger sizes up to this longest side
# (FaceDetector.scan_sizes); here, free of PyTorch, for the command line's defaults.
DEFAULT_MAX_SIZE = 2560

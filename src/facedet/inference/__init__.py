"""Running a trained model: :class:`~facedet.inference.detector.FaceDetector` with its PyTorch and
ONNX Runtime backends, and the ONNX export (:mod:`facedet.inference.onnx`)."""

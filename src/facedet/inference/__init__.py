"""Running a trained model: [`FaceDetector`][facedet.inference.detector.FaceDetector] with its PyTorch and
ONNX Runtime backends, and the ONNX export ([`facedet.inference.onnx`][])."""

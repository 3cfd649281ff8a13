"""Evaluation of face detections: COCO AP, thresholded precision/recall/F1, and plots."""

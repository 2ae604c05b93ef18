"""Datasets from footage and labels: brightness scoring, label-file parsing, relabelling,
frame extraction and plots. NumPy, OpenCV and PyAV only: nothing here imports torch."""

"""Running a generator fast: ONNX graphs and their cache, the ONNX Runtime and OpenVINO
backends with the measured ``auto`` choice, and the torch frame operations of the device path."""

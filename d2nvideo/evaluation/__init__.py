"""Measuring a model: image metrics, the download-free realism judge, the evaluation run
and its report."""

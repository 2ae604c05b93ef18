"""Training for d2nvideo (installed as ``d2nvideo.training``): data, discriminators, losses,
trainers, the loop, and export to the inference checkpoint."""

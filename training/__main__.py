"""``python -m d2nvideo.training CONFIG ...``: the train command, for torchrun."""

from d2nvideo.training.cli import train

if __name__ == "__main__":
    train(prog_name="python -m d2nvideo.training")

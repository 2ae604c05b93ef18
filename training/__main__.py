"""``python -m d2nvideo.training CONFIG ...``: the train command, for torchrun."""

from d2nvideo.training.cli import train

from d2nvideo.cli.shell import interrupts_leave_at_once

if __name__ == "__main__":
    with interrupts_leave_at_once():
        train(prog_name="python -m d2nvideo.training")

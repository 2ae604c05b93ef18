"""Many processes, one queue: under torchrun (``torchrun --nproc_per_node=N -m d2nvideo convert
...``, or across nodes with torchrun's rendezvous) every rank claims the next task from
torch.distributed's key-value store, so a long clip on one rank does not leave the others
idle; each rank runs on its own device; rank 0 gathers every outcome for one summary.

Tasks are planned identically on every rank (sorted), so a task index means the same file
everywhere. A rank killed mid-file leaves no output for it (outputs are renamed into place
only when complete), so the next run does that file again.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from ..processes import sigterm_default
from .plan import Task
from .run import Outcome

NEXT = "d2nvideo/convert/next"


@dataclass(frozen=True)
class World:
    rank: int
    size: int
    local_rank: int


def torchrun_world() -> World | None:
    """This process's place when launched by torchrun with more than one process."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size <= 1:
        return None
    return World(int(os.environ["RANK"]), size, int(os.environ.get("LOCAL_RANK", "0")))


def join(world: World) -> None:
    """Join the process group (NCCL with CUDA, each rank on its local GPU; gloo otherwise)."""
    import torch
    import torch.distributed as dist

    with sigterm_default():  # torchrun's SIGTERM must end a rank stuck in the rendezvous
        if torch.cuda.is_available():
            torch.cuda.set_device(world.local_rank)
            dist.init_process_group("nccl")
        else:
            dist.init_process_group("gloo")


def run_claimed(
    tasks: list[Task],
    convert: Callable[[Task, Callable[[int], None]], Outcome],
    on_frames: Callable[[int], None],
    on_outcome: Callable[[Outcome], None],
) -> list[Outcome] | None:
    """Claim and convert tasks until none is left; rank 0 returns every rank's outcomes in
    task order, the other ranks None."""
    import torch.distributed as dist
    from torch.distributed.distributed_c10d import _get_default_store

    store = _get_default_store()
    mine: list[tuple[int, Outcome]] = []
    while (index := store.add(NEXT, 1) - 1) < len(tasks):
        outcome = convert(tasks[index], on_frames)
        mine.append((index, outcome))
        on_outcome(outcome)
    gathered: list[list[tuple[int, Outcome]] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, mine)
    rank = dist.get_rank()
    dist.destroy_process_group()
    if rank != 0:
        return None
    pairs = [pair for part in gathered if part for pair in part]
    return [o for _, o in sorted(pairs, key=lambda pair: pair[0])]

"""More than one device or machine: torchrun and DistributedDataParallel, the engine PyTorch users run.

    torchrun --nproc_per_node 4 -m textmaker.cli classify train ...          # 4 GPUs, one machine
    torchrun --nnodes 2 --node_rank R --nproc_per_node 8 --master_addr HOST --master_port 29500 \\
        -m textmaker.cli classify train ...                                   # 2 machines of 8

Every process draws the same seeded order of global batches (batch_size x processes rows) and
takes its own share of each, so a run on N processes sees the batches a run on one process with
an N-times larger batch sees. Gradients are averaged across processes by DDP; training figures
are summed across them; validation, checkpoints and the saved model are rank 0's alone.
"""

from __future__ import annotations

import atexit
import os


def world() -> tuple[int, int]:
    """(rank, number of processes): (0, 1) outside torchrun."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def is_main() -> bool:
    return world()[0] == 0


def setup(device):
    """Join the process group torchrun describes; each process takes its own GPU where there are some."""
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        # Left to the interpreter's teardown, the group's C++ threads can be destroyed still running:
        # "terminate called without an active exception", SIGABRT, and torchrun reports a finished
        # run as failed (seen once in CI on a non-main rank). Leave it while Python still runs.
        atexit.register(leave)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    return device


def leave() -> None:
    """Destroy this process's group, if it has one (at exit; safe to call twice)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def sum_all(values: list[float], device) -> list[float]:
    """The values summed over every process."""
    import torch
    import torch.distributed as dist

    if world()[1] == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def from_main(obj):
    """Rank 0's object on every process."""
    import torch.distributed as dist

    if world()[1] == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def share_weights(model) -> None:
    """Rank 0's weights on every process (after rank 0 alone restored its best epoch)."""
    import torch.distributed as dist

    if world()[1] > 1:
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src=0)

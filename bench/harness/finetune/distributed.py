"""The fine-tune loop under torchrun: the process group, and sums and maxima across ranks."""

from __future__ import annotations


def dist_setup(device_type: str):
    """(rank, world size), initialising the process group under torchrun if needed."""
    import torch.distributed as dist

    from bench.dist import world_size

    if world_size() <= 1:
        return 0, 1
    if not dist.is_initialized():
        import atexit

        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
        atexit.register(lambda: dist.is_initialized() and dist.destroy_process_group())
    return dist.get_rank(), dist.get_world_size()


def all_sum(t, world: int):
    """``t`` summed over every rank, in place (``t`` itself on a single process)."""
    if world > 1:
        import torch.distributed as dist

        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def slowest_rank_time(seconds: float, world: int, device) -> float:
    """The epoch's time: the slowest rank's (all_reduce with MAX), not the ranks' mean."""
    if world <= 1:
        return seconds
    import torch
    import torch.distributed as dist

    t = torch.tensor([seconds], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t[0])


def gather_generator_states(gen, world: int) -> list:
    """Every rank's augmentation generator state, in rank order (a checkpoint holds them all)."""
    if world <= 1:
        return [gen.get_state()]
    import torch.distributed as dist

    gathered = [None] * world
    dist.all_gather_object(gathered, gen.get_state())
    return gathered

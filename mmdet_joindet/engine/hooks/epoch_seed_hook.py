# Copyright (c) mmdet_joindet contributors. All rights reserved.
from mmdet.registry import HOOKS
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.runner import set_random_seed


@HOOKS.register_module()
class EpochSeedHook(Hook):
    """Reseed every random generator at the start of each training epoch.

    mmengine seeds once, when the runner is built, and does not checkpoint
    random generators: a run resumed at epoch ``k`` draws other
    augmentations, dropout masks and crop jitter in epoch ``k`` than the
    uninterrupted run did. With this hook epoch ``k`` starts from
    ``seed + k`` (plus the rank, so ranks differ) in Python's ``random``,
    numpy and torch, whether the run was resumed or not, so a resumed run
    repeats the uninterrupted one (dataloader workers are seeded by
    mmengine from the run's seed when each epoch's iterator starts; with
    ``persistent_workers=False`` they restart with it).

    Priority VERY_HIGH: before any other hook draws in ``before_train_epoch``.

    Args:
        seed (int, optional): The base seed. Defaults to the runner's
            (``randomness.seed``), or 0 when it has none.
    """

    priority = 'VERY_HIGH'

    def __init__(self, seed=None) -> None:
        self.seed = seed

    def before_train_epoch(self, runner) -> None:
        base = self.seed if self.seed is not None else (runner.seed or 0)
        set_random_seed(base + runner.epoch + get_rank())

# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""JoinDet's prior update (paper Sec. 2, steps 1-3), inside mmengine."""
import hashlib
import os.path as osp
import time
from functools import partial
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmdet.registry import HOOKS, TASK_UTILS
from mmengine.dist import (all_gather_object, barrier, broadcast_object_list,
                           get_dist_info)
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmdet_joindet.datasets import PriorStore
from mmdet_joindet.models.detectors import DEFAULT_SOURCES, check_prior_sources
from mmdet_joindet.priors import UPDATE_MODES, cap_priors, update_priors
from ..prior_inference import (backbone_priors, image_generator_priors,
                               infer_priors, joint_priors)

CHECKPOINT_KEY = 'joindet_priors'


@HOOKS.register_module()
class PriorUpdateHook(Hook):
    """Generate, smooth and commit a new round of object priors.

    Before training (when the store holds no round yet) it computes
    ``R_0``: region priors of the frozen backbone (paper eq. 3). After every
    ``interval`` epochs, on all ranks: each rank runs the model in test mode
    over its shard of the unlabeled images (``infer_pipeline``: no
    augmentation), giving region priors of the encoder's eigen attention map
    and instance priors (eqs. 1-7); rank 0 gathers them, fuses each image's
    ``R_n`` with ``R_{n-1}`` (``mode``: the Box Smooth Module, eq. 8, or an
    ablation of Table 6), caps them to ``max_priors`` and commits the round
    to the :class:`PriorStore` atomically; every rank then reads it, and
    dataloader workers (persistent ones included) switch to it from the
    next epoch on.

    State (round, store root, per-round statistics) goes into checkpoints.
    ``resume`` re-points the store to the checkpoint's round, so a resumed
    run continues with the same priors; ``load_from`` leaves the store
    alone.

    Priority NORMAL: runs before ``CheckpointHook`` (VERY_LOW) in
    ``after_train_epoch``, so the epoch's checkpoint records the new round.

    Args:
        interval (int): Update every this many epochs (10 on COCO, 1 on
            ImageNet-1K: paper Sec. 3.1).
        mode (str): ``'box_smooth'`` (default), ``'direct'``, ``'nms'`` or
            ``'fixed'`` (never update).
        momentum (float): ``m`` of eq. 8. Defaults to 0.45.
        iou_thr (float): Box Smooth cluster IoU. Defaults to 0.55 (WBF's;
            our default).
        max_priors (int): Priors kept per image, highest score first.
            Defaults to 30 (DETReg's top 30; our default).
        prior_root (str, optional): The store's folder. Defaults to
            ``<work_dir>/priors``.
        infer_pipeline (list[dict]): Test-mode pipeline of the inference
            pass; its ``PackDetInputs`` must keep ``prior_index`` in
            ``meta_keys``.
        batch_size (int): Inference batch size per rank. Defaults to 1, as
            mmdet's Deformable DETR test loops: its GroupNorm neck sees the
            padding, so an image's outputs depend on its batch-mates. With
            one image per batch a round does not depend on the number of
            ranks or on how images are batched.
        num_workers (int): Inference dataloader workers.
        compute_r0 (bool): Compute ``R_0`` in ``before_train`` when the store
            has no committed round (else a missing round is an error: run
            ``tools/compute_r0.py`` first).
        collect_device (str): ``'cpu'`` or ``'gpu'``, as mmengine metrics.
        sources (Sequence[str]): What makes ``R_n`` of a pass: the default
            ``('region', 'instance')`` is eq. 7; Table 5's ablations use
            ``('predictions', )`` (a: the detector's raw foreground
            predictions), ``('region', )`` (c) or ``('instance', )`` (d).
            ``R_0`` is the backbone's region priors in every case (for (a)
            our choice: an untrained detector predicts no foreground above
            0.5, so it cannot make the first round itself).
        r0_generator (dict, optional): Make ``R_0`` with this image prior
            generator (``TASK_UTILS``, ``input_type='image'``:
            ``SelectiveSearchPriorGenerator``, ``RandomCropPriorGenerator``)
            on the unresized images instead of the backbone's eigen map (an
            option past the paper: JoinDet's rounds then refine DETReg's or
            UP-DETR's priors). Defaults to None (eq. 3).
    """

    priority = 'NORMAL'

    def __init__(self,
                 infer_pipeline: Sequence[dict],
                 interval: int = 10,
                 mode: str = 'box_smooth',
                 momentum: float = 0.45,
                 iou_thr: float = 0.55,
                 max_priors: int = 30,
                 prior_root: Optional[str] = None,
                 batch_size: int = 1,
                 num_workers: int = 0,
                 compute_r0: bool = True,
                 collect_device: str = 'cpu',
                 sources: Sequence[str] = DEFAULT_SOURCES,
                 r0_generator: Optional[dict] = None) -> None:
        if mode not in UPDATE_MODES:
            raise ValueError(f'mode must be one of {UPDATE_MODES}, got '
                             f'{mode!r}')
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}')
        packs = [t for t in infer_pipeline if t['type'] == 'PackDetInputs']
        if not packs or 'prior_index' not in packs[-1].get('meta_keys', ()):
            raise ValueError('infer_pipeline must end with PackDetInputs '
                             "whose meta_keys include 'prior_index'")
        check_prior_sources(sources)
        self.sources = tuple(sources)
        self.r0_generator = None
        if r0_generator is not None:
            self.r0_generator = TASK_UTILS.build(r0_generator)
            if getattr(self.r0_generator, 'input_type', None) != 'image':
                raise TypeError(
                    'r0_generator must be a prior generator of images '
                    "(input_type 'image'), got "
                    f'{type(self.r0_generator).__name__}')
        self.infer_pipeline = list(infer_pipeline)
        self.interval = interval
        self.mode = mode
        self.momentum = momentum
        self.iou_thr = iou_thr
        self.max_priors = max_priors
        self.prior_root = prior_root
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.compute_r0 = compute_r0
        self.collect_device = collect_device
        self.store: Optional[PriorStore] = None
        self.history: List[Dict] = []
        self._resume_state: Optional[Dict] = None

    # -- set-up ---------------------------------------------------------
    def before_run(self, runner) -> None:
        """Point the training dataset (before any worker exists) at the
        store."""
        root = self.prior_root or osp.join(runner.work_dir, 'priors')
        self.prior_root = root
        self.store = PriorStore(root)
        if get_dist_info()[0] == 0:
            # leftovers of a run killed while writing a round
            for path in self.store.cleanup_stale():
                runner.logger.warning(f'removed unfinished prior round {path}')
        barrier()
        self._dataset(runner).set_prior_root(root)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Remember the checkpoint's round; only ``resume`` uses it."""
        if getattr(runner, '_resume', False):
            self._resume_state = checkpoint.get(CHECKPOINT_KEY)

    def before_train(self, runner) -> None:
        """Resume's round, or ``R_0`` when the store is empty."""
        rank, _ = get_dist_info()
        if self._resume_state is not None:
            state = self._resume_state
            self.history = list(state.get('history', []))
            current = self.store.current_round()
            if state['round'] not in self.store.rounds():
                raise RuntimeError(
                    f'resuming needs round {state["round"]} of the prior '
                    f'store the checkpoint trained with ({state["root"]}); '
                    f'{self.prior_root} holds rounds '
                    f'{self.store.rounds()}: set PriorUpdateHook.prior_root '
                    'to that store (or resume in its work_dir)')
            if rank == 0 and current != state['round']:
                # rewind (later rounds kept) or commit; checks the
                # fingerprint when the checkpoint has the store's state
                self.store.load_state_dict(
                    state.get('store', dict(current_round=state['round'])))
            barrier()
            runner.logger.info(
                f'prior store {self.prior_root}: resumed at round '
                f'{state["round"]}')
            return
        if self.store.current_round() is not None:
            runner.logger.info(f'prior store {self.prior_root}: using round '
                               f'{self.store.current_round()}')
            return
        if not self.compute_r0:
            raise RuntimeError(
                f'the prior store {self.prior_root} holds no round: compute '
                'R0 first (tools/compute_r0.py) or set compute_r0=True')
        self.compute_round(runner, initial=True)

    # -- the update -----------------------------------------------------
    def after_train_epoch(self, runner) -> None:
        if self.mode == 'fixed' or not self.every_n_epochs(
                runner, self.interval):
            return
        self.compute_round(runner, initial=False)

    def compute_round(self, runner, initial: bool) -> None:
        """Infer, gather, fuse, commit; on every rank (collectives)."""
        dataset = self._dataset(runner)
        model = runner.model
        module = model.module if is_model_wrapper(model) else model
        start = time.perf_counter()
        pipeline, preprocess = self.infer_pipeline, True
        if not initial:
            extract = partial(joint_priors, sources=self.sources)
        elif self.r0_generator is None:
            extract = backbone_priors
        else:  # the generator reads the loaded image, not resized
            extract = partial(image_generator_priors, self.r0_generator)
            pipeline = [self.infer_pipeline[0], self.infer_pipeline[-1]]
            preprocess = False
        found = infer_priors(
            module,
            dataset.test_dataset(pipeline),
            len(dataset),
            extract=extract,
            preprocess=preprocess,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            collect_device=self.collect_device,
            desc='R0' if initial else 'prior update')
        rank, _ = get_dist_info()
        stats = [None]
        if rank == 0:
            stats[0] = self._commit(dataset, found, initial)
        broadcast_object_list(stats)
        barrier()
        self._check_ranks_agree(runner, stats[0]['round'])
        stats = dict(
            stats[0],
            seconds=round(time.perf_counter() - start, 2),
            epoch=runner.epoch + (0 if initial else 1))
        self.history.append(stats)
        kind = self._round_kind(initial)
        runner.logger.info(
            f'prior round {stats["round"]} ({kind}): '
            f'{stats["priors_per_image"]:.2f} priors/img, '
            f'{stats["changed"]:.1%} changed, {stats["missing"]} images '
            f'without a result, {stats["seconds"]:.1f} s')

    def _commit(self, dataset, found: Dict, initial: bool) -> Dict:
        """Rank 0: fuse with the previous round and commit the next."""
        n = len(dataset)
        prev = None if initial else self.store.load()
        empty = (torch.zeros(0, 4), torch.zeros(0))
        boxes, scores, changed, total = [], [], 0, 0
        for i in range(n):
            old = empty if prev is None else tuple(
                map(torch.from_numpy, prev.get(i)))
            if i not in found:  # did not load: keep what it had
                b, s = old
            elif initial:
                b, s = cap_priors(found[i][1], found[i][2], self.max_priors)
            else:
                b, s = update_priors(old, found[i][1:], self.mode,
                                     self.momentum, self.iou_thr,
                                     self.max_priors)
            changed += int(not (b.shape == old[0].shape
                                and torch.allclose(b, old[0], atol=0.5)))
            total += len(b)
            boxes.append(b)
            scores.append(s)
        round_idx = 0 if initial else prev.round + 1
        self.store.write_round(
            round_idx,
            boxes,
            scores,
            fingerprint=dataset.fingerprint(),
            info=dict(mode=self._round_kind(initial)),
            overwrite=True)
        self.store.commit(round_idx)
        return dict(
            round=round_idx,
            priors_per_image=total / max(n, 1),
            changed=changed / max(n, 1),
            missing=n - len(found))

    def _check_ranks_agree(self, runner, round_idx: int) -> None:
        """Every rank reads the committed round; their checksums must
        match (a shared store that is not shared, or a stale read, fails
        here rather than training on different priors)."""
        _, world_size = get_dist_info()
        if world_size == 1:
            return
        loaded = self.store.load()
        digest = hashlib.sha1(
            np.ascontiguousarray(loaded.boxes).tobytes() +
            np.ascontiguousarray(loaded.offsets).tobytes()).hexdigest()
        digests = all_gather_object((loaded.round, digest))
        if len(set(digests)) != 1:
            raise RuntimeError(
                f'ranks read different prior rounds after committing round '
                f'{round_idx}: {digests}; is {self.prior_root} on a file '
                'system every rank shares?')
        runner.logger.info(f'prior round {round_idx}: identical on '
                           f'{world_size} ranks ({digest[:12]})')

    def _round_kind(self, initial: bool) -> str:
        """What made a round: ``'R0'`` (eq. 3), ``'R0 <generator>'`` or
        the update mode."""
        if not initial:
            return self.mode
        if self.r0_generator is None:
            return 'R0'
        return f'R0 {type(self.r0_generator).__name__}'

    # -- checkpoint -----------------------------------------------------
    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Rank 0 only (no collectives here)."""
        store = self.store.state_dict()
        checkpoint[CHECKPOINT_KEY] = dict(
            round=store['current_round'],
            root=self.prior_root,
            mode=self.mode,
            history=list(self.history),
            store=store)

    @staticmethod
    def _dataset(runner):
        dataset = runner.train_dataloader.dataset
        if not hasattr(dataset, 'set_prior_root'):
            raise TypeError(
                'PriorUpdateHook needs a SelfSupervisedDataset as the '
                f'training dataset, got {type(dataset).__name__}')
        return dataset

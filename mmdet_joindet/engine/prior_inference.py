# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The inference pass that produces a round of object priors.

Each rank runs the model in test mode over its shard of the unlabeled set
(no augmentation), and the per-image priors are collected so that one
process can write the round (paper Sec. 2, steps 1-3; ``R_0``: eq. 3).
"""
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.dataset import pseudo_collate
from mmengine.dist import collect_results, get_dist_info
from mmengine.logging import MMLogger
from mmengine.model import is_model_wrapper
from mmengine.structures import InstanceData
from mmengine.utils import ProgressBar
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Subset

from mmdet_joindet.models.detectors import DEFAULT_SOURCES

# (dataset index, boxes float32 [k, 4] xyxy original pixels, scores [k]),
# CPU tensors: what crosses ranks (mmengine pickles it) and reaches the store.
ImagePriors = Tuple[int, Tensor, Tensor]


def joint_priors(
        model,
        inputs,
        data_samples,
        sources: Sequence[str] = DEFAULT_SOURCES) -> List[InstanceData]:
    """``R_n = P^r ++ P^i`` of a batch (paper eq. 7), or the ``sources``
    of a Table 5 ablation (:meth:`JoinDetPriors.object_priors`)."""
    return [
        p.object_priors(sources)
        for p in model.extract_priors(inputs, data_samples)
    ]


def backbone_priors(model, inputs, data_samples) -> List[InstanceData]:
    """``R_0 = RG(K(G(x)))`` of a batch (paper eq. 3)."""
    return model.backbone_region_priors(inputs, data_samples)


def image_generator_priors(generator, model, inputs,
                           data_samples) -> List[InstanceData]:
    """An image prior generator's boxes of each raw image of a batch
    (``R_0`` from selective search or random crops, an option past the
    paper). ``inputs`` are the packed, unresized images: uint8 ``[3, H,
    W]`` BGR tensors, so the boxes are in original-image pixels."""
    images = [img.permute(1, 2, 0).contiguous().numpy() for img in inputs]
    return generator.generate(images)


@torch.no_grad()
def infer_priors(model: torch.nn.Module,
                 dataset: Dataset,
                 num_images: int,
                 extract: Callable = joint_priors,
                 batch_size: int = 2,
                 num_workers: int = 0,
                 collect_device: str = 'cpu',
                 desc: str = 'priors',
                 preprocess: bool = True) -> Dict[int, ImagePriors]:
    """Run ``extract`` over this rank's shard; gather every image's priors.

    Must be called on every rank (it ends with a collective).

    Args:
        model: The detector (a model wrapper is unwrapped). Put in eval mode
            for the pass and restored afterwards.
        dataset: Yields test-mode packed samples (``inputs``,
            ``data_samples`` whose metainfo holds ``prior_index``).
        num_images (int): Size of the dataset.
        extract (callable): ``(model, inputs, data_samples) ->
            [InstanceData]`` (``bboxes``, ``scores``) per image:
            :func:`joint_priors` or :func:`backbone_priors`.
        collect_device (str): ``'cpu'`` (a shared temp dir, as mmengine's
            metrics) or ``'gpu'``.
        preprocess (bool): Hand ``extract`` the model's preprocessed batch
            (normalised, padded); False hands it the packed images as
            they are (:func:`image_generator_priors`).

    Returns:
        dict[int, tuple]: On rank 0, dataset index -> ``(index, boxes,
        scores)`` (CPU tensors) for every image that loaded; ``{}`` on
        other ranks.
    """
    module = model.module if is_model_wrapper(model) else model
    rank, world_size = get_dist_info()
    shard = list(range(rank, num_images, world_size))
    loader = DataLoader(
        Subset(dataset, shard),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=collate_loaded,
        shuffle=False)
    was_training = module.training
    module.eval()
    logger = MMLogger.get_current_instance()
    bar = ProgressBar(len(shard)) if rank == 0 else None
    results: List[ImagePriors] = []
    counts: Dict[str, int] = {}  # parts of R_n, when ``extract`` says
    start = time.perf_counter()
    try:
        for batch in loader:
            if batch is None:
                continue
            data = module.data_preprocessor(batch,
                                            False) if preprocess else batch
            priors = extract(module, data['inputs'], data['data_samples'])
            for sample, p in zip(data['data_samples'], priors):
                for part, n in p.metainfo.get('counts', {}).items():
                    counts[part] = counts.get(part, 0) + n
                results.append(
                    (int(sample.metainfo['prior_index']),
                     p.bboxes.float().cpu(), p.scores.float().cpu()))
                if bar is not None:
                    bar.update()
    finally:
        module.train(was_training)
    seconds = time.perf_counter() - start
    if bar is not None:
        bar.file.write('\n')
    logger.info(f'{desc}: {len(results)} images on rank {rank} in '
                f'{seconds:.1f} s ({len(results) / max(seconds, 1e-9):.1f} '
                'img/s)' + ''.join(f', {part} {n / max(len(results), 1):.2f}'
                                   '/img' for part, n in counts.items()))
    # Every rank reports the same number of items (pad with None) so that
    # collect_results can order them.
    per_rank = -(-num_images // world_size)
    padded = results + [None] * (per_rank - len(results))
    gathered = collect_results(padded, per_rank * world_size, collect_device)
    if rank != 0:
        return {}
    return {item[0]: item for item in gathered if item is not None}


def collate_loaded(items: Sequence) -> Optional[dict]:
    """``pseudo_collate`` of the samples that loaded (corrupt images give
    None); None when none did."""
    items = [x for x in items if x is not None]
    return pseudo_collate(items) if items else None

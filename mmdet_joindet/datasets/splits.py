# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Low-data splits of a COCO json: a labeled share of its images and the
unlabeled rest, drawn without replacement.

Two draws, both a pure function of the image ids, the share and the seed
(so every rank, process and machine gets the same split):

- ``'nested'`` (ours): the ids sorted, permuted by
  ``numpy.random.default_rng(seed)``, the first ``round(n * fraction)``
  kept. For one seed the splits are nested (1% inside 2% inside 10%), so
  results across label budgets differ by the labels alone.
- ``'detreg'``: DETReg's draw,
  ``numpy.random.default_rng(seed).choice(ids, round(n * fraction),
  replace=False)`` over the ids in the json's order (DETReg uses seed 42
  and COCO train2017's 118,287 ids).

MMDetection's ``tools/misc/split_coco.py`` draws with replacement (a
"10%" split of train2017 holds about 4.6% fewer distinct images than it
says); these draws hold exactly ``round(n * fraction)`` distinct images.
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

__all__ = ['SPLIT_MODES', 'draw_labeled_ids', 'split_coco_dict']

SPLIT_MODES = ('nested', 'detreg')


def draw_labeled_ids(img_ids: Sequence[int],
                     fraction: float,
                     seed: int,
                     mode: str = 'nested') -> List[int]:
    """The ids of the labeled share, in increasing order.

    Args:
        img_ids (Sequence[int]): Every image id, in the json's order (the
            order matters to ``'detreg'`` only). Must be unique.
        fraction (float): The labeled share, in (0, 1].
        seed (int): Seed of ``numpy.random.default_rng``.
        mode (str): ``'nested'`` or ``'detreg'`` (see the module).

    Returns:
        list[int]: ``round(len(img_ids) * fraction)`` distinct ids.

    Raises:
        ValueError: On a share outside (0, 1], a share that rounds to no
            image, duplicate ids or an unknown mode.
    """
    if mode not in SPLIT_MODES:
        raise ValueError(f'mode must be one of {SPLIT_MODES}, got {mode!r}')
    if not 0 < fraction <= 1:
        raise ValueError(f'the labeled share must be in (0, 1], got '
                         f'{fraction!r} (give percentages to the tool, '
                         'fractions to this function)')
    ids = np.asarray([int(i) for i in img_ids], dtype=np.int64)
    if len(np.unique(ids)) != len(ids):
        raise ValueError('the image ids are not unique: fix the json '
                         'before splitting it')
    num = int(round(len(ids) * fraction))
    if num < 1:
        raise ValueError(f'{fraction:g} of {len(ids)} images rounds to no '
                         'image: give a larger share or more images')
    rng = np.random.default_rng(seed)
    if mode == 'detreg':
        chosen = rng.choice(ids, num, replace=False)
    else:
        chosen = rng.permutation(np.sort(ids))[:num]
    return sorted(int(i) for i in chosen)


def split_coco_dict(coco: Dict,
                    labeled_ids: Sequence[int]) -> Tuple[Dict, Dict]:
    """The labeled and unlabeled COCO dicts of ``coco``.

    Both keep every top-level key of ``coco`` (``info``, ``licenses``,
    ``categories``...), the images in the json's order and each image's
    annotations; the unlabeled one keeps its annotations too (a user may
    score priors against them), and together they partition ``coco``.
    """
    keep = set(int(i) for i in labeled_ids)
    known = set(int(im['id']) for im in coco['images'])
    if not keep <= known:
        raise ValueError(f'{len(keep - known)} labeled ids are not images '
                         'of the json')
    parts = []
    for labeled in (True, False):
        part = {k: v for k, v in coco.items()}
        part['images'] = [
            im for im in coco['images'] if (int(im['id']) in keep) == labeled
        ]
        part['annotations'] = [
            a for a in coco.get('annotations', [])
            if (int(a['image_id']) in keep) == labeled
        ]
        parts.append(part)
    return parts[0], parts[1]

# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Do a backbone's cells tell the labeled objects from the background?

    PYTHONPATH=.:benchmarks python research/probe_cells.py \
        --data data/proxy/val [--backbone [LABEL=]PATH ...] [--depth 18] \
        [--scale 2] [--stride 8] [--cells 200] \
        [--background textures|photographs]

R0 (paper eq. 3) can only cut objects out if the backbone's features part
them from the background; this measures that part on its own, without
the cut. For each backbone (each checkpoint given, and random weights):
the feature map of the given stride of every image resized ``x scale``,
``cells`` random cells per image, each labelled *object* when its centre
lies in a ground-truth box (the labels of the oracle cut and of the
label-trained ceiling, ``bench_prior_quality.cells_in_boxes``), each
vector L2-normalised as it is before the eigen map's cosines, first
centred on its image's mean cell when ``centred`` (R0's centring). A
logistic regression is fitted on the cells of the first half of the
images and scores the cells of the other half; the table gives the AUC
of those held-out scores (0.5: the features say nothing, 1: a plane
separates objects from background).

A separating plane is not yet what a normalised cut of cosine
affinities reads: it parts groups of cells that are alike among
themselves and unlike the rest. So the table also gives, over all cells
of every image (raw, L2-normalised, as R0 reads them at a high tau), the
mean cosine between two cells of one object, of two different objects,
of an object and the background, and of two background cells
(:func:`cosine_means`; cells in two boxes are left out).

``--background`` keeps the images of one kind (the proxy's images name
the picture under them; ``textures`` are ``TEXTURE_NAMES``).

Seconds per backbone where the R0 sweep takes minutes: a quick screen for
self-supervised recipes before their R0 sweep.
"""
import argparse
import os.path as osp

import cv2
import numpy as np
import torch
from bench_prior_quality import add_backbone_args  # benchmarks/, on PYTHONPATH
from bench_prior_quality import (LEVELS, backbone_features, backbone_list,
                                 build_resnet, cells_in_boxes, load_set,
                                 split_by_background)
from scipy.stats import rankdata


def auc(scores, labels):
    """Area under the ROC curve of ``scores`` for bool ``labels``: the
    probability that a random positive outscores a random negative, ties
    counting one half (Mann-Whitney U over average ranks)."""
    scores, labels = np.asarray(scores), np.asarray(labels, bool)
    pos, neg = int(labels.sum()), int((~labels).sum())
    if pos == 0 or neg == 0:
        raise ValueError(f'AUC needs both classes, got {pos} positive and '
                         f'{neg} negative cells')
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - pos * (pos + 1) / 2) / (pos * neg))


def fit_logistic(x, y, l2=1e-4, steps=200):
    """Weights ``[C + 1]`` (bias last) of an L2-regularised logistic
    regression of bool ``y [N]`` on ``x [N, C]`` (float64, L-BFGS)."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    x = torch.cat([x, x.new_ones(len(x), 1)], 1)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float64)
    w = x.new_zeros(x.shape[1], requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=steps, line_search_fn='strong_wolfe')

    def loss():
        opt.zero_grad()
        value = torch.nn.functional.binary_cross_entropy_with_logits(
            x @ w, y) + l2 * (w[:-1]**2).sum()
        value.backward()
        return value

    opt.step(loss)
    return w.detach().numpy()


def unit_cells(x, groups, centred):
    """``x [N, C]`` L2-normalised per row, after subtracting each group's
    (image's) mean row when ``centred``."""
    x = np.asarray(x, np.float64).copy()
    if centred:
        for g in np.unique(groups):
            x[groups == g] -= x[groups == g].mean(0)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def probe_auc(x, y, groups, centred):
    """Held-out AUC: fit on the groups below the median group id, score the
    rest (whole images on each side, so no image is seen twice)."""
    groups = np.asarray(groups)
    x = unit_cells(x, groups, centred)
    train = groups < np.median(np.unique(groups))
    w = fit_logistic(x[train], np.asarray(y)[train])
    return auc(x[~train] @ w[:-1] + w[-1], np.asarray(y)[~train])


def cosine_means(unit, owner):
    """Sums and counts of the cosines of cell pairs by kind, in one image.

    Args:
        unit (ndarray): ``[N, C]`` L2-normalised cells.
        owner (ndarray): ``[N]`` int, the object (0..K-1) a cell belongs to,
            -1 for background, anything below -1 to leave the cell out.

    Returns:
        ndarray: ``[4]`` sums and ``[4]`` pair counts, over pairs of two
        distinct cells of the same object, of two different objects, of an
        object and the background, and of two background cells (sums of
        per-group vector sums, ``|s|^2 - n`` for pairs within a group).
    """
    unit, owner = np.asarray(unit, np.float64), np.asarray(owner)
    objects = [unit[owner == k] for k in range(max(owner.max() + 1, 0))]
    s_obj = np.array([o.sum(0) for o in objects]).reshape(-1, unit.shape[1])
    n_obj = np.array([len(o) for o in objects], np.float64)
    back = unit[owner == -1]
    s_bg, n_bg = back.sum(0), float(len(back))
    gram = s_obj @ s_obj.T
    within = np.diag(gram) - n_obj  # pairs i != j in each object
    sums = np.array([
        within.sum(),
        gram.sum() - np.diag(gram).sum(), (s_obj @ s_bg).sum(),
        s_bg @ s_bg - n_bg
    ])
    pairs = np.array([(n_obj * (n_obj - 1)).sum(),
                      n_obj.sum()**2 - (n_obj**2).sum(),
                      n_obj.sum() * n_bg, n_bg * (n_bg - 1)])
    return sums, pairs


def cell_cosines(per_image):
    """:func:`cosine_means` pooled over the images of :func:`image_cells`:
    ``[4]`` mean cosines (NaN where no pair of that kind exists)."""
    sums, pairs = np.zeros(4), np.zeros(4)
    for feat, inside in per_image:
        owner = np.where(inside.sum(0) == 1, inside.argmax(0), -1)
        owner[inside.sum(0) > 1] = -2
        s, n = cosine_means(unit_cells(feat, None, False), owner)
        sums, pairs = sums + s, pairs + n
    with np.errstate(invalid='ignore', divide='ignore'):
        return sums / pairs


def of_background(images, kind):
    """The images whose ``background`` is a texture (``kind='textures'``)
    or a photograph; all of them for ``kind=None``."""
    if kind is None:
        return images
    groups = split_by_background(images)
    if groups is None:
        raise SystemExit('--background needs images that name their '
                         "'background' (tools/misc/make_proxy_data.py "
                         'writes it); drop the option for other sets')
    return groups[kind]


def image_cells(net, root, images, gts, scale, level):
    """Per image, its cells ``[N, C]`` (the feature map of ``level`` of the
    image resized ``x scale``, row-major) and bool ``[K, N]``: cell ``n``
    has its centre in box ``k``."""
    out = []
    for im in images:
        img = cv2.imread(osp.join(root, 'images', im['file_name']))
        feats, shape = backbone_features(net, img, scale)
        feat = feats[level][0]
        stride = shape[0] / feat.shape[1] / scale  # original pixels
        inside = cells_in_boxes(gts[im['id']], feat.shape[1:], stride)
        cells = feat.flatten(1).T.numpy()
        out.append((cells, inside.reshape(len(inside), len(cells))))
    return out


def sample_cells(per_image, cells, seed=0):
    """Features ``[N, C]``, object labels ``[N]`` and image index ``[N]``
    of ``cells`` random cells of each image of :func:`image_cells` (all
    when it has fewer)."""
    rng = np.random.default_rng(seed)
    xs, ys, gs = [], [], []
    for n, (feat, inside) in enumerate(per_image):
        labels = inside.any(0)
        pick = rng.permutation(len(labels))[:cells]
        xs.append(feat[pick])
        ys.append(labels[pick])
        gs.append(np.full(len(pick), n))
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(gs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_backbone_args(parser)
    parser.add_argument('--scale', type=float, default=2.)
    parser.add_argument(
        '--stride', type=int, choices=sorted(LEVELS), default=8)
    parser.add_argument('--cells', type=int, default=200)
    parser.add_argument('--background', choices=('textures', 'photographs'))
    args = parser.parse_args()
    _, images, gts = load_set(args.data)
    images = of_background(images, args.background)
    if len(images) < 2:
        raise SystemExit(f'{args.data}: the probe needs >= 2 images (half '
                         f'to fit, half to score), got {len(images)}')
    level = LEVELS[args.stride]
    print(f'{"backbone":<24} {"AUC raw":>8} {"centred":>8} '
          f'{"cos same":>9} {"other":>6} {"obj-bg":>6} {"bg-bg":>6}  '
          f'(x{args.scale:g}, stride {args.stride}, {args.cells} cells/img '
          f'for the AUC, {len(images)} images)')
    for name, path in backbone_list(args.backbone):
        net = build_resnet(args.depth, path, args.base_channels)
        per_image = image_cells(net, args.data, images, gts, args.scale, level)
        x, y, g = sample_cells(per_image, args.cells)
        raw, centred = (probe_auc(x, y, g, c) for c in (False, True))
        cos = cell_cosines(per_image)
        print(
            f'{name:<24} {raw:8.3f} {centred:8.3f} {cos[0]:9.3f} '
            f'{cos[1]:6.3f} {cos[2]:6.3f} {cos[3]:6.3f}',
            flush=True)


if __name__ == '__main__':
    main()

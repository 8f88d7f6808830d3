# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Class-agnostic quality and cost of object priors on labeled images.

    PYTHONPATH=. python benchmarks/bench_prior_quality.py \
        --data data/proxy/val [--backbone work_dirs/ssl/backbone.pth] \
        [--depth 18] [--sweep] [--setting 2,8,centred,0.2] \
        [--figure docs/figures/priors_proxy_val.png]

For every image of a COCO-format set with boxes: the eigen-map region
priors R0 (paper eq. 3) of a ResNet (each given checkpoint, and random
weights), DETReg's selective search and UP-DETR's random crops;
each method's boxes ranked (region priors by area, selective search in
OpenCV's order, crops at random). Reported, all by pycocotools'
``COCOeval`` with ``useCats=0`` and the rank as score (``box_recall``
of ``mmdet_joindet.evaluation``: one-to-one matching, so a box finds one
object at most): AR@1/10/30 (averaged over IoU 0.5:0.95), recall at
IoU 0.5 with 10 and 30 boxes, AP50, and ms per image (for R0: the
backbone's forward pass included, as selective search starts from the
image too).
``--sweep`` also varies the input scale (the image resized x1, x2 or x4
before the backbone, as a detector's pipeline would), the feature level
(stride 8/16; stride 32 leaves a 4x4 or 8x8 grid on these 128 px images
and recalled at most 0.6% in every setting measured), centring and tau
(high taus for raw features, see ``sweep_settings``) for each backbone;
without it, ``--setting`` (repeatable) names the settings to run. The
figure and the recall by background show each backbone at its best
setting of the run (by R50@30).

The "oracle cut" rows bound what the cut can do whatever the features:
each replaces the eigen map's foreground by the ground truth (cells
whose centre lies in a box) on the grid of a given stride in original-image
pixels and boxes its 4-connected components as R0 does; what it misses is
lost to one foreground/background cut per image (touching or overlapping
objects merge) and to the grid.
"""
import argparse
import contextlib
import io
import itertools
import json
import os.path as osp
import time

import cv2
import numpy as np
import torch


def load_set(root):
    """``<root>/annotations.json`` (shapes) or ``<root>/<name>.json``
    (proxy splits), images under ``<root>/images``."""
    ann = osp.join(root, 'annotations.json')
    if not osp.exists(ann):
        ann = osp.join(root, osp.basename(osp.normpath(root)) + '.json')
    with open(ann) as f:
        coco = json.load(f)
    images = sorted(coco['images'], key=lambda im: im['id'])
    gts = {im['id']: [] for im in images}
    for a in coco['annotations']:
        x, y, w, h = a['bbox']
        gts[a['image_id']].append([x, y, x + w, y + h])
    return coco, images, {
        k: np.array(v, np.float32).reshape(-1, 4)
        for k, v in gts.items()
    }


def scores(gts, preds, img_ids=None):
    """Class-agnostic COCO AR / AP of ``preds`` (``{image id: [K, 4]}``,
    best first) on the images ``img_ids`` (every image of ``gts`` by
    default), at 1 / 10 / 30 boxes per image: ``box_recall``'s dict."""
    from mmdet_joindet.evaluation import box_recall
    ids = list(gts) if img_ids is None else list(img_ids)
    return box_recall([gts[i] for i in ids], [preds[i] for i in ids],
                      max_dets=(1, 10, 30))


MEAN = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
STD = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
LEVELS = {8: 0, 16: 1, 32: 2}  # stride -> index of ResNet out_indices (1-3)
# Grids (px of the original image) of the oracle rows: those the sweep reads
# (cells of stride / scale), so each setting has its bound.
ORACLE_STRIDES = (2, 4, 8, 16)


def backbone_features(net, img, scale=1):
    """``net``'s feature maps of the BGR uint8 ``img`` resized ``x scale``
    (ImageNet mean/std, RGB), and the resized image's ``(h, w)``."""
    h, w = img.shape[:2]
    if scale != 1:
        img = cv2.resize(img, (round(w * scale), round(h * scale)))
    x = torch.from_numpy(img[..., ::-1].copy()).permute(2, 0, 1)[None]
    with torch.no_grad():
        return list(net((x.float() - MEAN) / STD)), img.shape[:2]


def eigen_method(net, stride_idx, centre, tau, scale=1):
    from mmdet_joindet.models.task_modules.object_priors import \
        EigenRegionPriorGenerator
    gen = EigenRegionPriorGenerator(
        max_priors=30, level=stride_idx, centre=centre, tau=tau)

    def run(img, gt=None):
        h, w = img.shape[:2]
        feats, shape = backbone_features(net, img, scale)
        meta = dict(
            img_shape=shape,
            batch_input_shape=shape,
            ori_shape=(h, w),
            scale_factor=(shape[1] / w, shape[0] / h))
        return gen.generate(feats, [meta])[0].bboxes.numpy()

    return run


def cells_in_boxes(boxes, shape, stride):
    """Bool ``[K, h, w]``: cell ``(i, j)`` of a ``stride`` px grid has its
    centre ``((j + 0.5) stride, (i + 0.5) stride)`` in box ``k``
    (``x1 <= x < x2``, pixels, xyxy)."""
    cy = (np.arange(shape[0]) + 0.5) * stride
    cx = (np.arange(shape[1]) + 0.5) * stride
    b = np.asarray(boxes, np.float64).reshape(-1, 1, 1, 4)
    return ((cy[:, None] >= b[..., 1]) & (cy[:, None] < b[..., 3]) &
            (cx[None] >= b[..., 0]) & (cx[None] < b[..., 2]))


def oracle_method(stride):
    """R0's boxing of a perfect foreground: cells (``stride`` px, original
    image) whose centre lies in a ground-truth box."""
    from mmdet_joindet.priors import region_boxes

    def run(img, gt):
        h, w = img.shape[:2]
        grid = (-(-h // stride), -(-w // stride))
        fg = cells_in_boxes(gt, grid, stride).any(0)
        boxes = region_boxes(torch.from_numpy(fg)).numpy() * stride
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        return boxes[np.argsort(-area, kind='stable')][:30]

    return run


def generator_method(generator):
    """A registered prior generator as ``method(img, gt) -> [K, 4]``."""
    return lambda img, gt: generator.generate([img])[0].bboxes.numpy()


def build_resnet(depth, checkpoint, base_channels=64):
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    init = (
        dict(type='Pretrained', checkpoint=checkpoint) if checkpoint else None)
    net = ResNet(
        depth=depth,
        base_channels=base_channels,
        out_indices=(1, 2, 3),
        init_cfg=init)
    if checkpoint:
        with contextlib.redirect_stdout(io.StringIO()):
            net.init_weights()
    net.eval()  # ResNet.train() returns None: no chaining
    return net


# printed figures and their widths (the header's)
COLUMNS = (('AR@1', 6), ('AR@10', 6), ('AR@30', 6), ('AR50@10', 7),
           ('AR50@30', 7), ('mAP_50', 6))


def evaluate(name, method, coco, images, gts, root):
    """Print one row; return the predictions, ``{image id: [K, 4]}``."""
    preds, start = {}, time.perf_counter()
    for im in images:
        img = cv2.imread(osp.join(root, 'images', im['file_name']))
        preds[im['id']] = method(img, gts[im['id']])
    ms = 1e3 * (time.perf_counter() - start) / len(images)
    s = scores(gts, preds)
    per = np.mean([len(p) for p in preds.values()])
    print(f'{name:<60} {per:5.1f} ' +
          ' '.join(f'{100 * s[k]:{w}.1f}' for k, w in COLUMNS) + f' {ms:8.1f}')
    return preds


def split_by_background(images):
    """``{'textures': [...], 'photographs': [...]}`` of the proxy images by
    the scikit-image picture under them (``background``; textures are
    ``TEXTURE_NAMES``), or None when an image does not name it."""
    from mmdet_joindet.datasets.proxy.builder import TEXTURE_NAMES
    if not all('background' in im for im in images):
        return None
    textures = [im['background'] in TEXTURE_NAMES for im in images]
    return dict(
        textures=[im for im, t in zip(images, textures) if t],
        photographs=[im for im, t in zip(images, textures) if not t])


def split_by_picture(images):
    """``{picture: [...]}`` of the proxy images by the scikit-image picture
    under them (``background``), pictures in name order, or None when an
    image does not name it."""
    if not all('background' in im for im in images):
        return None
    groups = {}
    for im in images:
        groups.setdefault(im['background'], []).append(im)
    return dict(sorted(groups.items()))


def group_recall(groups, gts, preds):
    """R50@30 (%) of ``preds`` on each group of ``groups`` (name -> image
    dicts), in the groups' order."""
    return [
        100 * scores(gts, preds, [im['id'] for im in ims])['AR50@30']
        for ims in groups.values()
    ]


def by_background(images, gts, rows):
    """R50@30 of each method on texture and on photograph backgrounds, then
    on each picture.

    Proxy images name the scikit-image picture under them
    (``background``); the photographs hold real objects (coins, a cup,
    faces, cells) that nobody labeled, which an unsupervised cut may find
    instead of the digits.
    """
    groups = split_by_background(images)
    if groups is None:
        return
    head = '  '.join(f'{g} ({sum(len(gts[im["id"]]) for im in ims)} obj)'
                     for g, ims in groups.items())
    print(f'\nR50@30 by background: {head}')
    for k, (name, preds) in enumerate(rows):
        print(f'{k + 1:>2} {name:<57} ' +
              ' '.join(f'{c:8.1f}' for c in group_recall(groups, gts, preds)))
    pictures = split_by_picture(images)
    table = [group_recall(pictures, gts, preds) for _, preds in rows]
    print('\nR50@30 by picture (columns: the methods numbered above)')
    print(f'{"picture":<22} {"imgs":>4} {"obj":>4} ' +
          ' '.join(f'{k + 1:>6}' for k in range(len(rows))))
    for j, (picture, ims) in enumerate(pictures.items()):
        n_obj = sum(len(gts[im['id']]) for im in ims)
        print(f'{picture:<22} {len(ims):>4} {n_obj:>4} ' +
              ' '.join(f'{column[j]:6.1f}' for column in table))


FIGURE_IMAGES = 4


def save_figure(path, root, images, gts, rows, tile=256):
    """A grid: one row per method, ground truth in green, priors in red
    (top 10), each image scaled to ``tile`` x ``tile``."""
    tiles = []
    for name, preds in rows:
        row = []
        for im in images[:FIGURE_IMAGES]:
            boxes = preds[im['id']]
            img = cv2.imread(osp.join(root, 'images', im['file_name']))
            scale = (tile / img.shape[1], tile / img.shape[0])
            img = cv2.resize(
                img, (tile, tile), interpolation=cv2.INTER_NEAREST)
            for b in gts[im['id']]:
                cv2.rectangle(img, *_corners(b, scale), (0, 200, 0), 1)
            for b in boxes[:10]:
                cv2.rectangle(img, *_corners(b, scale), (0, 0, 255), 1)
            row.append(img)
        label = np.full((tile, 200, 3), 255, np.uint8)
        for i, line in enumerate(_wrap(name, 24)):
            cv2.putText(label, line, (4, 20 + 16 * i),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1)
        tiles.append(np.concatenate([label] + row, 1))
    write_png(path, np.concatenate(tiles, 0))


def write_png(path, bgr):
    """A 256-colour palette PNG (a quarter of the RGB file's size)."""
    from PIL import Image
    rgb = Image.fromarray(np.ascontiguousarray(bgr[..., ::-1]))
    palette = rgb.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    palette.save(path, optimize=True)


def _corners(box, scale):
    x1, x2 = (int(round(v * scale[0])) for v in box[0::2])
    y1, y2 = (int(round(v * scale[1])) for v in box[1::2])
    return (x1, y1), (x2 - 1, y2 - 1)


def _wrap(text, width):
    words, lines = text.split(), ['']
    for w in words:
        if len(lines[-1]) + len(w) + 1 > width:
            lines.append('')
        lines[-1] = (lines[-1] + ' ' + w).strip()
    return lines


def parse_setting(text):
    """``'scale,stride,centred|raw,tau'`` -> ``(scale, level, centre,
    tau)``."""
    try:
        scale, stride, centre, tau = text.split(',')
        level = LEVELS[int(stride)]
        if centre not in ('centred', 'raw'):
            raise ValueError(centre)
        return float(scale), level, centre == 'centred', float(tau)
    except (ValueError, KeyError) as e:
        raise argparse.ArgumentTypeError(
            f'--setting must be scale,stride(8|16|32),centred|raw,tau; got '
            f'{text!r}') from e


def sweep_settings():
    """``(scale, level, centre, tau)`` of ``--sweep``: scales x1/x2/x4,
    strides 8/16, centred features with TokenCut's taus 0.1-0.3, raw ones
    with taus 0.3-0.9. x4 at stride 16 reads the deeper level on the same
    4 px grid of the original image as x2 at stride 8; x4 at stride 8 cuts
    the finest grid, 2 px cells (a 4096-cell graph, ~5x the cost of x2).
    Raw ResNet features are ReLU outputs whose cosines mostly exceed 0.3
    (measured by this sweep): only a high tau leaves their graph sparse
    enough to cut."""
    taus = {True: (0.1, 0.2, 0.3), False: (0.3, 0.5, 0.7, 0.85, 0.9)}
    grid = list(itertools.product((1.0, 2.0, 4.0), (0, 1), (True, False)))
    return [(scale, level, centre, tau) for scale, level, centre in grid
            for tau in taus[centre]]


def add_backbone_args(parser):
    """``--data``, ``--backbone`` (repeatable) and ``--depth``, as this
    script and ``probe_cells.py`` take them."""
    parser.add_argument('--data', required=True)
    parser.add_argument(
        '--backbone',
        action='append',
        default=[],
        metavar='[LABEL=]PATH',
        help='a backbone.pth of tools/train_ssl_backbone.py (repeatable; '
        'LABEL defaults to its folder; random weights are always measured '
        'too)')
    parser.add_argument('--depth', type=int, default=18)
    parser.add_argument(
        '--base-channels',
        type=int,
        default=64,
        help='ResNet width (32: the main job\'s half-width backbone)')


def backbone_list(specs):
    """``[(label, path)]`` of ``--backbone`` values, random weights
    (path None) last."""
    out = []
    for spec in specs:
        label, _, path = spec.rpartition('=')
        out.append((label
                    or osp.basename(osp.dirname(osp.abspath(path))), path))
    return out + [('random', None)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_backbone_args(parser)
    parser.add_argument('--sweep', action='store_true')
    parser.add_argument(
        '--setting',
        type=parse_setting,
        action='append',
        help='scale,stride,centred|raw,tau of an R0 row without --sweep '
        '(repeatable; default: 2,8,centred,0.2)')
    parser.add_argument(
        '--no-selective-search',
        action='store_true',
        help='leave out selective search (it needs opencv-contrib, which '
        'a machine with plain opencv lacks)')
    parser.add_argument(
        '--figure',
        help='write a PNG of the first images with each '
        "method's top-10 boxes (each backbone at its best setting)")
    args = parser.parse_args()
    from mmdet.registry import TASK_UTILS

    import mmdet_joindet  # noqa: F401
    coco, images, gts = load_set(args.data)
    n_obj = sum(len(g) for g in gts.values())
    print(f'{args.data}: {len(images)} images, {n_obj} objects')
    print(f'{"method":<60} {"boxes":>5} {"AR@1":>6} {"AR@10":>6} '
          f'{"AR@30":>6} {"R50@10":>7} {"R50@30":>7} {"AP50":>6} '
          f'{"ms/img":>8}')
    backbones = backbone_list(args.backbone)
    settings = args.setting or [parse_setting('2,8,centred,0.2')]
    if args.sweep:
        settings = sweep_settings()
    rows = []  # each method's boxes, for the figure and by_background
    for label, ckpt in backbones:
        net = build_resnet(args.depth, ckpt, args.base_channels)
        best = (-1.0, None)
        for scale, level, centre, tau in settings:
            setting = (f'x{scale:g}, stride {8 * 2**level}, '
                       f'{"centred" if centre else "raw"}, tau {tau}')
            preds = evaluate(f'R0 eigen, {label} R-{args.depth}, {setting}',
                             eigen_method(net, level, centre, tau, scale),
                             coco, images, gts, args.data)
            recall = scores(gts, preds)['AR50@30']
            if recall > best[0]:
                best = (recall, (f'R0 eigen, {label} ({setting})', preds))
        rows.append(best[1])
    for stride in ORACLE_STRIDES:
        name = f'oracle cut: ground-truth foreground, {stride} px grid'
        preds = evaluate(name, oracle_method(stride), coco, images, gts,
                         args.data)
        if stride == min(ORACLE_STRIDES):  # the grid of the best settings
            oracle = (name, preds)
    generators = [('random crops', 'random crops (30)',
                   dict(type='RandomCropPriorGenerator', num_crops=30,
                        seed=0))]
    if not args.no_selective_search:
        generators.insert(
            0,
            ('selective search', 'selective search (fast, 128x128, top 30)',
             dict(type='SelectiveSearchPriorGenerator', max_priors=30,
                  seed=0)))
    for label, name, cfg in generators:
        method = generator_method(TASK_UTILS.build(cfg))
        rows.append((label, evaluate(name, method, coco, images, gts,
                                     args.data)))
    by_background(images, gts, rows + [oracle])
    if args.figure:
        save_figure(args.figure, args.data, images, gts, rows)
        print(f'figure: {args.figure}')


if __name__ == '__main__':
    main()

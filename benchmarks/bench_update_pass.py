# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The prior-update pass against a plain mmdet test loop, side by side.

    PYTHONPATH=. python benchmarks/bench_update_pass.py [--setting tiny|r50]
        [--repeat 3] [--device cpu|cuda]

Same model (JoinDet, random weights), same images (scikit-image's photos
written as PNG files), same dataloader and test pipeline (resize, pack),
one image per batch. "test loop": ``data_preprocessor`` + ``predict`` per
batch, as mmengine's TestLoop does without an evaluator. "update pass":
:func:`mmdet_joindet.engine.prior_inference.infer_priors` with the joint
region + instance priors (what ``PriorUpdateHook`` runs every interval).
The two passes alternate; the median of ``--repeat`` runs each is shown.
"""
import argparse
import os.path as osp
import statistics
import tempfile
import time

import cv2
import numpy as np
import torch

PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'camera', 'coins', 'cat',
          'immunohistochemistry')
SETTINGS = {
    # name: (depth, layers, queries, embed_dims, test scale (w, h))
    'tiny': (18, 1, 30, 64, (320, 256)),
    'r50': (50, 6, 300, 256, (666, 400)),
}


def write_photos(folder):
    from skimage import data
    for name in PHOTOS:
        img = getattr(data, name)()
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, 2)
        cv2.imwrite(osp.join(folder, f'{name}.png'), img[..., 2::-1])


def build(setting, folder, device):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    from mmdet_joindet.datasets import SelfSupervisedDataset
    from mmdet_joindet.testing.tiny_config import set_embed_dims
    register_all_modules(init_default_scope=True)
    depth, layers, queries, dims, scale = SETTINGS[setting]
    cfg = Config.fromfile(
        'configs/_base_/models/joindet_deformable-detr_r50-swav.py').model
    cfg.backbone.update(depth=depth, init_cfg=None)
    chans = [64, 128, 256, 512] if depth < 50 else [256, 512, 1024, 2048]
    cfg.neck.update(in_channels=chans[1:], out_channels=dims)
    cfg.num_queries = queries
    cfg.test_cfg.max_per_img = queries
    for part in ('encoder', 'decoder'):
        cfg[part].num_layers = layers
        set_embed_dims(cfg[part], dims)
    cfg.positional_encoding.num_feats = dims // 2
    cfg.bbox_head.embed_dims = dims
    torch.manual_seed(0)
    model = MODELS.build(cfg).to(device)
    model.eval()
    pipeline = [
        dict(type='LoadImageSafely'),
        dict(type='Resize', scale=scale, keep_ratio=True),
        dict(
            type='PackDetInputs',
            meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                       'scale_factor', 'prior_index'))
    ]
    dataset = SelfSupervisedDataset(
        dataset=dict(type='ImageFolderDataset', data_root=folder), pipeline=[])
    return model, dataset.test_dataset(pipeline), len(dataset)


def test_loop(model, view, n):
    from torch.utils.data import DataLoader

    from mmdet_joindet.engine.prior_inference import collate_loaded
    loader = DataLoader(view, batch_size=1, collate_fn=collate_loaded)
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            model.predict(data['inputs'], data['data_samples'])


def update_pass(model, view, n):
    from mmdet_joindet.engine.prior_inference import infer_priors
    infer_priors(model, view, n, batch_size=1, desc='bench')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--setting', default='tiny', choices=SETTINGS)
    parser.add_argument('--repeat', type=int, default=3)
    parser.add_argument('--device', default='cpu')
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        write_photos(folder)
        model, view, n = build(args.setting, folder, args.device)
        passes = dict(test_loop=test_loop, update_pass=update_pass)
        for fn in passes.values():  # warm-up
            fn(model, view, n)
        times = {k: [] for k in passes}
        for _ in range(args.repeat):
            for k, fn in passes.items():
                t = time.perf_counter()
                fn(model, view, n)
                times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    name = (
        torch.cuda.get_device_name()
        if args.device == 'cuda' else f'CPU, {torch.get_num_threads()} '
        'threads')
    print(f'{name}; setting {args.setting} {SETTINGS[args.setting]}; '
          f'{n} photos, batch 1')
    print(f'test loop {1e3 * med["test_loop"] / n:.1f} ms/img, update pass '
          f'{1e3 * med["update_pass"] / n:.1f} ms/img, ratio '
          f'{med["update_pass"] / med["test_loop"]:.3f}')


if __name__ == '__main__':
    main()

# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""JoinDet's training step against mmdet's Deformable DETR step.

    PYTHONPATH=. python benchmarks/bench_joindet_step.py [--setting tiny|r50]
        [--iters 5] [--device cpu|cuda]

Both models share the backbone (ResNet, frozen as in JoinDet's
pretraining), transformer, queries, batch, image size and 30 boxes per
image (DETReg's top-30 priors); they differ only by what JoinDet adds: the
embedding targets (RoIAlign crops through the frozen backbone's C3), the
embedding branch and its loss, and a 1-class head (Deformable DETR keeps
COCO's 80). One step = forward, backward, grad clip 0.1, AdamW.

Time: the two models' steps alternate (A B A B ...) in one process, after
warm-up; the median of each is reported, so machine noise hits both.
Peak memory: each model runs alone in a fresh subprocess: on a GPU, CUDA's
max_memory_allocated over 2 steps after a first one (the model, its
gradients and AdamW's state included); on the CPU, its peak RSS growth
over those steps (the kernel's VmHWM, reset after the first step, minus the
RSS then).
"""
import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

SETTINGS = {
    # name: (depth, layers, queries, embed_dims, (h, w), batch)
    'tiny': (18, 1, 30, 64, (256, 256), 2),
    'r50': (50, 6, 300, 256, (512, 512), 2),
    'r50-800': (50, 6, 300, 256, (800, 1066), 2),
}


def build(kind, setting, device, crop_autocast=None):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    from mmengine.config import Config
    from mmengine.hub import get_config

    import mmdet_joindet  # noqa: F401
    register_all_modules(init_default_scope=True)
    depth, layers, queries, dims, _, _ = SETTINGS[setting]
    if kind == 'joindet':
        cfg = Config.fromfile(
            'configs/_base_/models/joindet_deformable-detr_r50-swav.py').model
        cfg.crop_jitter = None
        cfg.crop_autocast = crop_autocast
    else:
        cfg = get_config(
            'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py'
        ).model
    cfg.backbone.update(depth=depth, frozen_stages=4, init_cfg=None)
    chans = [64, 128, 256, 512] if depth < 50 else [256, 512, 1024, 2048]
    cfg.neck.in_channels = chans[1:]
    cfg.neck.out_channels = dims
    cfg.num_queries = queries
    for part in ('encoder', 'decoder'):
        cfg[part].num_layers = layers
    if dims != 256:
        from mmdet_joindet.testing.tiny_config import set_embed_dims
        set_embed_dims(cfg.encoder, dims)
        set_embed_dims(cfg.decoder, dims)
        cfg.positional_encoding.num_feats = dims // 2
        cfg.bbox_head.embed_dims = dims
    torch.manual_seed(0)
    model = MODELS.build(cfg).to(device)  # PyTorch's default init: timing
    model.train()
    return model


def make_batch(setting, device, num_boxes=30):
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    _, _, _, _, (h, w), batch = SETTINGS[setting]
    g = torch.Generator().manual_seed(1)
    inputs = torch.randn(batch, 3, h, w, generator=g).to(device)
    samples = []
    for _ in range(batch):
        xy = torch.rand(num_boxes, 2, generator=g) * torch.tensor([w, h]) / 2
        wh = torch.rand(
            num_boxes, 2, generator=g) * torch.tensor([w, h]) / 2 + 8
        s = DetDataSample(
            metainfo=dict(
                img_shape=(h, w),
                ori_shape=(h, w),
                batch_input_shape=(h, w),
                pad_shape=(h, w),
                scale_factor=(1.0, 1.0)))
        s.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + wh], 1).to(device),
            labels=torch.zeros(num_boxes, dtype=torch.long, device=device))
        samples.append(s)
    return inputs, samples


def make_step(model, setting, device):
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=2e-4, weight_decay=1e-4)

    def step():
        inputs, samples = make_batch(setting, device)
        losses = model.loss(inputs, samples)
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 0.1)
        optim.step()
        if device == 'cuda':
            torch.cuda.synchronize()

    return step


def rss_mib():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def reset_peak_rss():
    """Reset the kernel's high-water mark (VmHWM) to the current RSS."""
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')


def peak_rss_mib():
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith('VmHWM:'):
                return int(line.split()[1]) / 1024
    raise RuntimeError('no VmHWM in /proc/self/status')


def child(kind, setting, iters, crop_autocast, device='cpu'):
    """Peak memory of ``iters`` steps of one model alone, as JSON (MiB):
    on CUDA the allocator's peak, on the CPU the peak RSS growth."""
    model = build(kind, setting, device, crop_autocast)
    step = make_step(model, setting, device)
    step()  # optimizer state and allocator pools exist from here on
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
        for _ in range(iters):
            step()
        peak = torch.cuda.max_memory_allocated() / 2**20
        print(json.dumps(dict(peak=peak)))
        return
    reset_peak_rss()
    before = rss_mib()
    for _ in range(iters):
        step()
    peak = peak_rss_mib()
    print(json.dumps(dict(before=before, peak=peak, growth=peak - before)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--setting', default='tiny', choices=SETTINGS)
    parser.add_argument('--iters', type=int, default=5)
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--crop-autocast',
        choices=['bfloat16', 'float16'],
        help="JoinDet's crop_autocast (default: float32 targets)")
    parser.add_argument('--child', help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.setting, 2, args.crop_autocast,
                     args.device)
    dev = args.device
    name = (
        torch.cuda.get_device_name() if dev == 'cuda' else
        f'{platform.machine()} CPU, {torch.get_num_threads()} threads')
    depth, layers, queries, dims, hw, batch = SETTINGS[args.setting]
    print(f'{name}; torch {torch.__version__}; setting {args.setting}: '
          f'R-{depth}, {layers}+{layers} layers, {queries} queries, '
          f'{dims} dims, {batch} x {hw[0]}x{hw[1]}, 30 boxes/img, '
          f'crop_autocast={args.crop_autocast}')
    steps = {
        k:
        make_step(
            build(k, args.setting, dev, args.crop_autocast), args.setting, dev)
        for k in ('detr', 'joindet')
    }
    for step in steps.values():  # warm-up
        step()
    times = {k: [] for k in steps}
    for _ in range(args.iters):
        for k, step in steps.items():
            t = time.perf_counter()
            step()
            times[k].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f'step time (median of {args.iters}): Deformable DETR '
          f'{med["detr"] * 1e3:.0f} ms, JoinDet {med["joindet"] * 1e3:.0f} '
          f'ms, ratio {med["joindet"] / med["detr"]:.3f}')
    del steps  # the children measure memory with one model each
    if dev == 'cuda':
        torch.cuda.empty_cache()
    mem = {}
    for k in ('detr', 'joindet'):
        out = subprocess.run(
            [
                sys.executable, __file__, '--setting', args.setting,
                '--device', dev, '--child', k
            ] + (['--crop-autocast', args.crop_autocast]
                 if args.crop_autocast else []),
            capture_output=True,
            text=True,
            check=True)
        reading = json.loads(out.stdout.strip().splitlines()[-1])
        mem[k] = reading['peak' if dev == 'cuda' else 'growth']
    label = ('peak CUDA memory, each model alone'
             if dev == 'cuda' else 'peak RSS growth over the steps')
    print(f'{label}: Deformable DETR {mem["detr"]:.0f} MiB, JoinDet '
          f'{mem["joindet"]:.0f} MiB, ratio '
          f'{mem["joindet"] / mem["detr"]:.3f}')


if __name__ == '__main__':
    main()

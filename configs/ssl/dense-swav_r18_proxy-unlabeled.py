# Dense SwAV (pixel-level swapped prediction of Sinkhorn cluster codes) of
# the ResNet-18 whose feature maps give the eigen-map region priors, on the
# proxy set's unlabeled images, sized for a 2-core CPU. Run:
#   python tools/train_ssl_backbone.py <this file>
# It writes <work_dir>/backbone.pth for `init_cfg=dict(type='Pretrained')`.
custom_imports = dict(imports=['mmdet_joindet'], allow_failed_imports=False)
default_scope = 'mmdet'

# Measured on the 2-core CPU here (2 torch threads, 2 workers): the 800
# iterations (batch 32, 96 px views) take 16.5 minutes; the model
# dominates, not the data loader.
max_iters = 800
size = 96

model = dict(
    type='DenseSwAV',
    backbone=dict(
        type='ResNet',
        depth=18,
        out_indices=(1, 2, 3),  # a head on C3, C4, C5: every stage trained
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    view_size=size,
    num_prototypes=64)  # data_preprocessor: the default (ImageNet, RGB)

# Crops of 10-50% of the image (TwoViews' BYOL default: 20-100%): each view
# is magnified 1.1-2.4x, near the 2x at which the priors are read, and more
# of its cells fall on the small pasted objects.
# No colour jitter, grayscale, blur or solarisation: the proxy's objects
# differ from the background under them by a colour offset and by being
# smooth, and invariance to exactly those erases them from the features.
# Measured (research/probe_cells.py, held-out AUC of a linear probe of
# object vs background cells, x2, stride 8, centred; random weights 0.70,
# label-trained 0.89): 200 iterations with BYOL's augmentations 0.68,
# without blur/solarisation 0.71, without any 0.76; 800 iterations 0.76
# with them, 0.84 without (docs/benchmarks.md).
train_dataloader = dict(
    batch_size=32,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    # the workers stack each batch: one [B, 2, 3, S, S] tensor crosses to
    # the main process instead of 2B small ones (the data loader bound a
    # GPU run; research/bench_ssl_loader.py: 2.25x faster here)
    collate_fn=dict(type='default_collate'),
    dataset=dict(
        type='UnlabeledCocoDataset',
        data_root='data/proxy/unlabeled/',
        ann_file='unlabeled.json',  # tools/misc/make_proxy_data.py
        data_prefix=dict(img='images/'),
        pipeline=[
            dict(type='LoadImageSafely'),
            dict(
                type='TwoViews',
                size=size,
                scale=(0.1, 0.5),
                jitter_prob=0.,
                gray_prob=0.,
                blur_probs=(0., 0.),
                solarize_probs=(0., 0.)),
        ]))
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
# AdamW rather than the paper's LARS: LARS is for batches of 4096; at batch
# 32 and a few hundred steps Adam's per-parameter steps converge fastest.
# No weight decay on BN and biases (as BYOL and SwAV).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.01,
        by_epoch=False,
        begin=0,
        end=max_iters // 10),
    dict(
        type='CosineAnnealingLR',
        by_epoch=False,
        begin=max_iters // 10,
        end=max_iters,
        eta_min=1e-5),
]

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook',
        by_epoch=False,
        interval=max_iters,
        max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'))
# <work_dir>/backbone.pth at the end, also under `mim train` / tools/train.py
custom_hooks = [dict(type='ExportBackboneHook')]
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False

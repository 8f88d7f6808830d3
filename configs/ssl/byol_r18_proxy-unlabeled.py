# BYOL (Grill et al. 2020) pretraining of the ResNet-18 whose features give
# the eigen-map region priors, on the proxy set's unlabeled images, sized
# for a 2-core CPU. Run: python tools/train_ssl_backbone.py <this file>;
# it writes <work_dir>/backbone.pth for `init_cfg=dict(type='Pretrained')`.
custom_imports = dict(imports=['mmdet_joindet'], allow_failed_imports=False)
default_scope = 'mmdet'

# Measured on the 2-core CPU here (2 torch threads, 2 workers, another job
# running; 128 px stand-in PNGs): iterations 2-6 of a 6-iteration run took
# 1.37 s each (batch 32, 96 px views); the first ~8 s (worker start-up).
# The model dominates (data_time 0.02 s). 800 iterations ~ 18 min,
# plus ~30 s start-up and checkpointing: within the 20-minute budget.
max_iters = 800
size = 96

model = dict(
    type='BYOL',
    backbone=dict(
        type='ResNet',
        depth=18,
        out_indices=(3, ),
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,  # trained from scratch: BN statistics must move
        init_cfg=None),
    hidden_channels=1024,
    out_channels=128,
    momentum=0.99,  # paper 0.996: this run is ~1000x shorter
    total_updates=max_iters,  # tau -> 1 along a cosine (paper Sec. 3.2)
    data_preprocessor=dict(
        type='MultiViewDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True))

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
            # small images: crops of at least 20% (paper: 8%, ImageNet)
            dict(type='TwoViews', size=size, scale=(0.2, 1.0)),
        ]))

train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters)
# AdamW rather than the paper's LARS: LARS is for batches of 4096; at batch
# 32 and a few hundred steps Adam's per-parameter steps converge fastest.
# No weight decay on BN and biases (as the paper, Sec. 3.3).
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

# Stage 2 of the main job: JoinDet pretraining on the proxy's 2000 unlabeled
# images, from the stage-1 backbone (frozen, as SwAV's in the paper), with a
# CPU-sized Deformable DETR: half-width ResNet-18, one encoder and one
# decoder layer of 64 channels, 30 queries. 6 epochs, priors updated after
# epochs 2, 4 and 6 (rounds 1-3 after R0).
_base_ = [
    '../joindet/joindet_deformable-detr_r50-swav_16xb2-50e_coco.py',
    '../_base_/models/tiny-deformable-detr_r18.py'
]

data_root = 'data/proxy/'
ssl_backbone = 'work_dirs/main_job/ssl/backbone.pth'  # stage 1's export
image_size = (128, 128)  # the proxy images' own size
model = dict(
    _base_.tiny_model,
    num_queries=30,  # was 300: 1-6 objects an image
    backbone=dict(
        depth=18,
        base_channels=32,  # was 64
        init_cfg=dict(type='Pretrained', checkpoint=ssl_backbone)),
    neck=dict(_base_.tiny_model.neck,
              in_channels=[64, 128, 256]),  # C3-C5 at half width
    # 128 px images: the stride-8 levels (stride 32 leaves 4 x 4 cells),
    # read at twice the training size (prior_scale below): 4 px cells
    region_prior_generator=dict(
        type='EigenRegionPriorGenerator', stride=8,
        max_priors=None),  # was stride 32
    backbone_prior_generator=dict(
        type='EigenRegionPriorGenerator',
        stride=8,  # was 32
        centre=True,
        max_priors=None),
    crop_size=32,  # was 128: the digits are 10-77 px
    test_cfg=dict(max_per_img=30))
train_pipeline = [
    dict(type='LoadImageSafely'),
    dict(type='LoadPriors', max_priors=10),
    dict(type='RandomFlip', prob=0.5),
    # scale jittering at the proxy's size (was 1024 px, ratio 0.1-2.0)
    dict(
        type='RandomResize',
        scale=image_size,
        ratio_range=(0.5, 1.5),
        keep_ratio=True),
    dict(
        type='RandomCrop',
        crop_type='absolute',
        crop_size=image_size,
        recompute_bbox=False,
        allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='CopyPasteSmallPriors', max_area=16 * 16),  # was 32 * 32
    dict(type='PackDetInputs')
]
# The prior passes (R0 and every update) read the images at twice the
# training size: on 128 px images an 8 px cell is a third of a small digit,
# and R0 of this backbone recalls 7.5% of the val digits at IoU 0.5 with 4 px
# cells against 2.2% with 8 px ones (docs/main_job.md). Boxes are mapped
# back to original pixels, so training reads them at any size.
prior_scale = 2
infer_pipeline = [
    dict(t, scale=(prior_scale * image_size[0], prior_scale *
                   image_size[1])) if t['type'] == 'Resize' else t
    for t in _base_.infer_pipeline
]
train_dataloader = dict(
    batch_size=8,  # was 2
    num_workers=0,  # was 2: two cores; the model, not the loader, bounds
    persistent_workers=False,
    batch_sampler=None,
    dataset=dict(
        dataset=dict(
            data_root=data_root,
            ann_file='unlabeled/unlabeled.json',
            data_prefix=dict(img='unlabeled/images/')),
        pipeline=train_pipeline))
max_epochs = 6  # was 50
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(_base_.param_scheduler[0], end=max_epochs, milestones=[5])
]  # was 40 of 50
custom_hooks = [
    dict(
        _base_.custom_hooks[0],  # PriorUpdateHook
        interval=2,  # was 10
        max_priors=10,  # was 30
        infer_pipeline=infer_pipeline),
    dict(type='EpochSeedHook')  # a resumed run repeats the uninterrupted
]
randomness = dict(seed=0)
default_hooks = dict(
    logger=dict(interval=50), checkpoint=dict(interval=1, max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=8)

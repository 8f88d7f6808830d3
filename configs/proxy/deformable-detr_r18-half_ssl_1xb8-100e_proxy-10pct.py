# The main job's comparison: mmdet's stock Deformable DETR (the JoinDet
# pretraining's model sizes, 10 digit classes) finetuned on the proxy's 10%
# labels (50 images) without detector pretraining, from the stage-1
# self-supervised backbone alone (the backbone JoinDet's pretraining
# starts from and keeps frozen); evaluated on the 200 val images.
_base_ = [
    'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py',
    '../_base_/models/tiny-deformable-detr_r18.py'
]
custom_imports = dict(imports=['mmdet_joindet'], allow_failed_imports=False)

data_root = 'data/proxy/'
ssl_backbone = 'work_dirs/main_job/ssl/backbone.pth'  # stage 1's export
image_size = (128, 128)
classes = tuple(str(d) for d in range(10))
model = dict(
    _base_.tiny_model,
    num_queries=30,  # was 300
    backbone=dict(
        depth=18,
        base_channels=32,
        init_cfg=dict(type='Pretrained', checkpoint=ssl_backbone)),
    neck=dict(_base_.tiny_model.neck, in_channels=[64, 128, 256]),
    bbox_head=dict(num_classes=len(classes)),  # was 80
    test_cfg=dict(max_per_img=30))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    # no flip (a mirrored digit is another shape); scale jittering instead
    dict(
        type='RandomResize',
        scale=image_size,
        ratio_range=(0.75, 1.25),
        keep_ratio=True),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    batch_sampler=None,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='train/train_10pct.json',  # was COCO train2017
        data_prefix=dict(img='train/images/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        metainfo=dict(classes=classes),
        ann_file='val/val.json',
        data_prefix=dict(img='val/images/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='CocoMetric', ann_file=data_root + 'val/val.json'),
    dict(type='ClassAgnosticCocoMetric', ann_file=data_root + 'val/val.json')
]
test_evaluator = val_evaluator
max_epochs = 100  # 50 images: 7 iterations an epoch
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
param_scheduler = [
    dict(_base_.param_scheduler[0], end=max_epochs, milestones=[80])
]  # was 40 of 50
custom_hooks = [dict(type='EpochSeedHook')]  # resumed = uninterrupted
randomness = dict(seed=0)
default_hooks = dict(
    logger=dict(interval=10), checkpoint=dict(interval=10, max_keep_ckpts=2))
log_processor = dict(window_size=7)
auto_scale_lr = dict(base_batch_size=8)

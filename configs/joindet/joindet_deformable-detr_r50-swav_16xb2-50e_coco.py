# JoinDet pretraining on COCO train2017 without labels (paper Sec. 3.1):
# 50 epochs, lr drop at 40 (the base schedule), priors updated every 10
# epochs with the Box Smooth Module, large-scale jittering, copy-paste of
# small priors (Table 7). 16 GPUs x 2 images.
_base_ = '../_base_/models/joindet_deformable-detr_r50-swav.py'

data_root = 'data/coco/'
backend_args = None
train_pipeline = [
    dict(type='LoadImageSafely', backend_args=backend_args),
    dict(type='LoadPriors', max_priors=30),
    dict(type='RandomFlip', prob=0.5),
    # large-scale jittering [17]: resize by 0.1-2.0, crop back to 1024
    dict(
        type='RandomResize',
        scale=(1024, 1024),
        ratio_range=(0.1, 2.0),
        keep_ratio=True),
    dict(
        type='RandomCrop',
        crop_type='absolute',
        crop_size=(1024, 1024),
        recompute_bbox=False,
        allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='CopyPasteSmallPriors'),
    dict(type='PackDetInputs')
]
# The prior-update inference pass: no augmentation.
infer_pipeline = [
    dict(type='LoadImageSafely', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'prior_index'))
]
train_dataloader = dict(
    batch_size=2,
    num_workers=2,
    dataset=dict(
        _delete_=True,
        type='SelfSupervisedDataset',
        dataset=dict(
            type='UnlabeledCocoDataset',
            data_root=data_root,
            ann_file='annotations/instances_train2017.json',
            data_prefix=dict(img='train2017/')),
        pipeline=train_pipeline))
# Pretraining has no labels: no validation or test loop.
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None

custom_hooks = [
    dict(
        type='PriorUpdateHook',
        interval=10,  # COCO: every 10 epochs (paper Sec. 3.1)
        mode='box_smooth',
        momentum=0.45,
        infer_pipeline=infer_pipeline)
]
default_hooks = dict(checkpoint=dict(interval=5, max_keep_ckpts=3))

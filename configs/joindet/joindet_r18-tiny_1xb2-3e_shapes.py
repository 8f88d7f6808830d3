# A CPU-sized JoinDet pretraining on the embedded shapes images
# (`python tools/misc/make_shapes_coco.py --out data/shapes`): R-18 with
# random weights, one encoder/decoder layer, 3 epochs, priors updated every
# epoch. It exercises the whole loop (R0, update hook, store, resume);
# its priors mean nothing without a self-supervised backbone.
_base_ = [
    './joindet_deformable-detr_r50-swav_16xb2-50e_coco.py',
    '../_base_/models/tiny-deformable-detr_r18.py'
]

model = dict(
    _base_.tiny_model,  # R-18 (no SwAV download), one layer each, 64 channels
    num_queries=20,  # was 300
    crop_size=32,  # was 128
    test_cfg=dict(max_per_img=20))

train_pipeline = [
    dict(type='LoadImageSafely'),
    dict(type='LoadPriors', max_priors=10),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=(160, 128), keep_ratio=True),
    dict(type='PackDetInputs')
]
# the base's inference pass, at the training size
infer_pipeline = [
    dict(t, scale=(160, 128)) if t['type'] == 'Resize' else t
    for t in _base_.infer_pipeline
]
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    batch_sampler=None,
    dataset=dict(
        dataset=dict(
            type='UnlabeledCocoDataset',
            data_root='data/shapes/',
            ann_file='annotations.json',
            data_prefix=dict(img='images/')),
        pipeline=train_pipeline))
custom_hooks = [
    dict(
        _base_.custom_hooks[0],  # PriorUpdateHook
        interval=1,  # was 10
        max_priors=10,  # was 30
        infer_pipeline=infer_pipeline)
]
train_cfg = dict(max_epochs=3)
param_scheduler = []
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=5))
auto_scale_lr = dict(base_batch_size=2)

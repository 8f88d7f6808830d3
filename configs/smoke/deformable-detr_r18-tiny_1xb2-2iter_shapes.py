# A two-iteration CPU smoke run of mmdet's Deformable DETR, shrunk to a
# ResNet-18, one encoder/decoder layer and 10 queries, on the tiny shapes set
# that `python tools/misc/make_shapes_coco.py` writes to data/shapes/.
_base_ = [
    'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py',
    '../_base_/models/tiny-deformable-detr_r18.py'
]
custom_imports = dict(imports=['mmdet_joindet'], allow_failed_imports=False)

model = dict(
    _base_.tiny_model,  # R-18, one encoder/decoder layer, 64 channels
    num_queries=10,  # was 300
    bbox_head=dict(_base_.tiny_model.bbox_head, num_classes=2),  # 2 shapes
    test_cfg=dict(max_per_img=10))  # <= num_queries * num_classes

data_root = 'data/shapes/'
metainfo = dict(classes=('rectangle', 'ellipse'))
pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),  # small images
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'flip', 'flip_direction'))
]
dataset = dict(
    type='CocoDataset',
    data_root=data_root,
    metainfo=metainfo,
    ann_file='annotations.json',
    data_prefix=dict(img='images/'),
    pipeline=pipeline)
train_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(dataset, filter_cfg=dict(filter_empty_gt=False)))
val_dataloader = dict(
    batch_size=2,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(dataset, test_mode=True))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations.json')
test_evaluator = val_evaluator

train_cfg = dict(
    _delete_=True, type='IterBasedTrainLoop', max_iters=2, val_interval=2)
param_scheduler = []  # constant lr for two iterations
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(by_epoch=False, interval=2))
log_processor = dict(by_epoch=False)
auto_scale_lr = dict(base_batch_size=2)

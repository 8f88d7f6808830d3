# A two-iteration CPU smoke run of mmdet's Deformable DETR, shrunk to a
# ResNet-18, one encoder/decoder layer and 10 queries, on the tiny shapes set
# that `python tools/misc/make_shapes_coco.py` writes to data/shapes/.
_base_ = 'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py'
custom_imports = dict(imports=['mmdet_joindet'], allow_failed_imports=False)

embed_dims = 64
model = dict(
    num_queries=10,  # was 300: tiny
    backbone=dict(depth=18, init_cfg=None),  # was R-50 torchvision: no dl
    neck=dict(in_channels=[128, 256, 512], out_channels=embed_dims),
    encoder=dict(
        num_layers=1,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=128))),
    decoder=dict(
        num_layers=1,
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=embed_dims),
            cross_attn_cfg=dict(embed_dims=embed_dims),
            ffn_cfg=dict(embed_dims=embed_dims, feedforward_channels=128))),
    positional_encoding=dict(num_feats=embed_dims // 2),
    bbox_head=dict(num_classes=2, embed_dims=embed_dims),  # 2 shapes
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

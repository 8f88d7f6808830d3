# A CPU-sized JoinDet pretraining on the embedded shapes images
# (`python tools/misc/make_shapes_coco.py --out data/shapes`): R-18 with
# random weights, one encoder/decoder layer, 3 epochs, priors updated every
# epoch. It exercises the whole loop (R0, update hook, store, resume);
# its priors mean nothing without a self-supervised backbone.
_base_ = './joindet_deformable-detr_r50-swav_16xb2-50e_coco.py'

embed_dims = 64
model = dict(
    num_queries=20,  # was 300
    backbone=dict(depth=18, init_cfg=None),  # was SwAV R-50: no download
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
    bbox_head=dict(embed_dims=embed_dims),
    crop_size=32,  # was 128
    test_cfg=dict(max_per_img=20))

train_pipeline = [
    dict(type='LoadImageSafely'),
    dict(type='LoadPriors', max_priors=10),
    dict(type='RandomFlip', prob=0.5),
    dict(type='Resize', scale=(160, 128), keep_ratio=True),
    dict(type='PackDetInputs')
]
infer_pipeline = [
    dict(type='LoadImageSafely'),
    dict(type='Resize', scale=(160, 128), keep_ratio=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor', 'prior_index'))
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
        type='PriorUpdateHook',
        interval=1,
        max_priors=10,
        infer_pipeline=infer_pipeline)
]
train_cfg = dict(max_epochs=3)
param_scheduler = []
default_hooks = dict(
    logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=5))
auto_scale_lr = dict(base_batch_size=2)

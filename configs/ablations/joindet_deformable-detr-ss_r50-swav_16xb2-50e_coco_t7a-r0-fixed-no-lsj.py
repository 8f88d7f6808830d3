# Table 7, first row: R0 never updated, with Deformable DETR's own
# augmentation (flip, multi-scale resize, random crop) instead of
# large-scale jittering and copy-paste of small priors.
_base_ = './joindet_deformable-detr-ss_r50-swav_16xb2-50e_coco_t5b-r0-fixed.py'

train_pipeline = [
    dict(type='LoadImageSafely'),
    dict(type='LoadPriors', max_priors=30),
    dict(type='RandomFlip', prob=0.5),
    dict(
        type='RandomChoice',  # Deformable DETR's multi-scale training
        transforms=[[
            dict(
                type='RandomChoiceResize',
                scales=[(480, 1333), (512, 1333), (544, 1333), (576, 1333),
                        (608, 1333), (640, 1333), (672, 1333), (704, 1333),
                        (736, 1333), (768, 1333), (800, 1333)],
                keep_ratio=True)
        ],
                    [
                        dict(
                            type='RandomChoiceResize',
                            scales=[(400, 4200), (500, 4200), (600, 4200)],
                            keep_ratio=True),
                        dict(
                            type='RandomCrop',
                            crop_type='absolute_range',
                            crop_size=(384, 600),
                            allow_negative_crop=True),
                        dict(
                            type='RandomChoiceResize',
                            scales=[(480, 1333), (512, 1333), (544, 1333),
                                    (576, 1333), (608, 1333), (640, 1333),
                                    (672, 1333), (704, 1333), (736, 1333),
                                    (768, 1333), (800, 1333)],
                            keep_ratio=True)
                    ]]),  # was large-scale jittering
    dict(type='PackDetInputs')  # was CopyPasteSmallPriors first
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# DETReg's priors on ImageNet-100 without labels (Table 4's DETReg row).
_base_ = [
    './detreg_deformable-detr_r50-swav_16xb2-50e_coco.py',
    '../_base_/datasets/imagenet100-unlabeled.py'
]

train_dataloader = dict(
    batch_sampler=None,  # was AspectRatioBatchSampler: no image sizes
    dataset=dict(
        _base_.imagenet100_unlabeled,
        _delete_=True,
        pipeline=_base_.train_pipeline))  # was COCO train2017

# JoinDet pretraining on ImageNet-100 without labels (paper Sec. 3.1 and
# Table 4): COCO's 50-epoch recipe, priors updated every 10 epochs.
_base_ = [
    './joindet_deformable-detr_r50-swav_16xb2-50e_coco.py',
    '../_base_/datasets/imagenet100-unlabeled.py'
]

train_dataloader = dict(
    # was AspectRatioBatchSampler: image folders do not list image sizes
    batch_sampler=None,
    dataset=dict(dataset=dict(_base_.imagenet100_unlabeled,
                              _delete_=True)))  # was COCO train2017

# DETReg's priors on ImageNet-100 without labels (Table 4's DETReg row).
_base_ = './detreg_deformable-detr_r50-swav_16xb2-50e_coco.py'

train_dataloader = dict(
    # was AspectRatioBatchSampler: image folders do not list image sizes
    batch_sampler=None,
    dataset=dict(
        _delete_=True,
        type='ImageNetTreeDataset',  # was COCO train2017
        data_root='data/imagenet/',
        data_prefix=dict(img='train'),
        classes='imagenet100',
        pipeline=_base_.train_pipeline))

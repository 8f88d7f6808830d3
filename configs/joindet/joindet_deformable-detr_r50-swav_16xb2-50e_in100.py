# JoinDet pretraining on ImageNet-100 without labels (paper Sec. 3.1 and
# Table 4; CMC's 100 classes, shipped as classes='imagenet100'): COCO's
# 50-epoch recipe, priors updated every 10 epochs.
_base_ = './joindet_deformable-detr_r50-swav_16xb2-50e_coco.py'

train_dataloader = dict(
    # was AspectRatioBatchSampler: image folders do not list image sizes
    batch_sampler=None,
    dataset=dict(
        dataset=dict(
            _delete_=True,
            type='ImageNetTreeDataset',  # was COCO train2017
            data_root='data/imagenet/',
            data_prefix=dict(img='train'),
            classes='imagenet100')))

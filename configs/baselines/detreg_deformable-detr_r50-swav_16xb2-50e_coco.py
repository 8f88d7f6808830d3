# DETReg's priors through JoinDet's detector, objective and loop (Tables 1,
# 4, 5): selective search (fast, on the image resized to 128 x 128, top 30)
# recomputed for every sample every epoch, as DETReg does, instead of
# JoinDet's stored, refined priors. Everything else is the JoinDet COCO
# pretraining config.
_base_ = '../joindet/joindet_deformable-detr_r50-swav_16xb2-50e_coco.py'

prior_generator = dict(type='SelectiveSearchPriorGenerator', max_priors=30)
train_pipeline = [
    dict(type='GenerateImagePriors', generator=prior_generator)
    if t['type'] == 'LoadPriors' else t for t in _base_.train_pipeline
]  # was LoadPriors (the prior store)
train_dataloader = dict(
    dataset=dict(
        _delete_=True,  # was SelfSupervisedDataset over the prior store
        type='UnlabeledCocoDataset',
        data_root='data/coco/',
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        pipeline=train_pipeline))
custom_hooks = []  # was PriorUpdateHook: nothing is stored or updated

# Table 7, second row: R0 never updated, large-scale jittering without
# copy-paste of small priors (the third row, "+ copy & paste", is t5b).
_base_ = './joindet_deformable-detr-ss_r50-swav_16xb2-50e_coco_t5b-r0-fixed.py'

train_pipeline = [
    t for t in _base_.train_pipeline if t['type'] != 'CopyPasteSmallPriors'
]  # was with CopyPasteSmallPriors
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# JoinDet pretraining on ImageNet-1K without labels (paper Sec. 3.1): 5
# epochs, priors updated after every epoch.
_base_ = './joindet_deformable-detr_r50-swav_16xb2-50e_in100.py'

train_dataloader = dict(dataset=dict(dataset=dict(classes=None)))  # all 1000
max_epochs = 5  # was 50
train_cfg = dict(max_epochs=max_epochs)
param_scheduler = [
    dict(_base_.param_scheduler[0], end=max_epochs,
         milestones=[4])  # was 40: the last epoch at the low LR, as COCO's
]
custom_hooks = [dict(_base_.custom_hooks[0], interval=1)]  # was 10
default_hooks = dict(checkpoint=dict(interval=1))  # was 5

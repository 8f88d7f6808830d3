# Table 7: the ablation finetune for 100 epochs, LR drop at 70 (the full VOC
# recipe of configs/finetune/).
_base_ = './deformable-detr-ss_r50_16xb2-25e_voc0712.py'

max_epochs = 100  # was 25
train_cfg = dict(max_epochs=max_epochs, val_interval=10)
param_scheduler = [
    dict(type='MultiStepLR', end=max_epochs, by_epoch=True,
         milestones=[70])  # was constant
]
default_hooks = dict(checkpoint=dict(interval=10))

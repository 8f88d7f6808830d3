# Tables 5 and 6, "25 epochs": finetune a single-scale ablation pretraining
# on VOC07+12 (test on VOC07 test). Give the converted checkpoint with
#   --cfg-options load_from=checkpoints/<ablation>.pth
# Seeds: the paper reports the mean AP of 3 runs (--cfg-options
# randomness.seed=1, 2, 3).
_base_ = [
    '../finetune/deformable-detr_r50_16xb2-100e_voc0712.py',
    '../_base_/models/deformable-detr-ss_r50.py'
]

model = dict(
    _base_.single_scale_model,  # was 4 levels
    backbone=dict(_base_.single_scale_model.backbone,
                  init_cfg=None))  # was ImageNet-supervised: load_from
max_epochs = 25  # was 100
train_cfg = dict(max_epochs=max_epochs, val_interval=5)
param_scheduler = []  # was a drop at 70 (the paper gives none here)
default_hooks = dict(checkpoint=dict(interval=5))

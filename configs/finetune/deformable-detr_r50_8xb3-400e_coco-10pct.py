# Table 1, "Supervised" row at 10% of COCO: mmdet's Deformable DETR from
# its ImageNet-supervised ResNet-50 (no detector pretraining), finetuned on
# 10% of train2017 with DETReg's low-data recipe. The split:
#   python tools/misc/split_low_data.py --detreg --percent 1 2 5 10 \
#       --ann-file data/coco/annotations/instances_train2017.json \
#       --out-dir data/coco/semi_anns
_base_ = 'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py'
custom_imports = dict(imports=['mmdet_joindet'], allow_failed_imports=False)

train_dataloader = dict(
    batch_size=3,  # was 2: DETReg's 8 GPUs x 3 images
    dataset=dict(
        ann_file='semi_anns/instances_train2017.42@10.json'))  # was all
max_epochs = 400  # was 50: DETReg's 400 epochs at 10%
train_cfg = dict(max_epochs=max_epochs, val_interval=20)  # was 1
param_scheduler = []  # was a drop at 40: DETReg keeps the LR constant
default_hooks = dict(checkpoint=dict(interval=20, max_keep_ckpts=3))
auto_scale_lr = dict(base_batch_size=24)  # was 32: 8 x 3

# Table 1, "Supervised" row at 1% of COCO (DETReg's recipe: 2000 epochs).
_base_ = './deformable-detr_r50_8xb3-400e_coco-10pct.py'

train_dataloader = dict(
    dataset=dict(ann_file='semi_anns/instances_train2017.42@1.json'))
train_cfg = dict(max_epochs=2000, val_interval=100)  # was 400, 20
default_hooks = dict(checkpoint=dict(interval=100))

# Table 2, JoinDet row pretrained on COCO (converted: see the 10% COCO
# config), finetuned on VOC07+12 with the supervised row's recipe.
_base_ = './deformable-detr_r50_16xb2-100e_voc0712.py'

model = dict(backbone=dict(init_cfg=None))  # was ImageNet-supervised
load_from = 'checkpoints/joindet_deformable-detr_r50-swav_coco.pth'  # was None

# Table 1, JoinDet row at 5% of COCO: as the 10% config, on its split.
_base_ = './deformable-detr_r50_8xb3-500e_coco-5pct.py'

model = dict(backbone=dict(init_cfg=None))  # was ImageNet-supervised
load_from = 'checkpoints/joindet_deformable-detr_r50-swav_coco.pth'  # was None

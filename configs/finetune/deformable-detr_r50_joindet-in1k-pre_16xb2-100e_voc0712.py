# Table 2, JoinDet row pretrained on ImageNet-1K without labels (5 epochs,
# configs/joindet/joindet_deformable-detr_r50-swav_16xb2-5e_in1k.py,
# converted with tools/model_converters/joindet_to_deformable_detr.py).
_base_ = './deformable-detr_r50_16xb2-100e_voc0712.py'

model = dict(backbone=dict(init_cfg=None))  # was ImageNet-supervised
load_from = 'checkpoints/joindet_deformable-detr_r50-swav_in1k.pth'  # was None

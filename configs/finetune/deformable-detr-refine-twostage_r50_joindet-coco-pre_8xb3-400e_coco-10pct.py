# The two-stage, box-refine variant at 10% of COCO from JoinDet pretrained
# in the same variant (configs/joindet/
# joindet_deformable-detr-refine-twostage_r50-swav_16xb2-50e_coco.py).
_base_ = './deformable-detr-refine-twostage_r50_8xb3-400e_coco-10pct.py'

model = dict(backbone=dict(init_cfg=None))  # was ImageNet-supervised
load_from = 'checkpoints/joindet_deformable-detr-refine-twostage_r50-swav_coco.pth'  # noqa: E501; was None

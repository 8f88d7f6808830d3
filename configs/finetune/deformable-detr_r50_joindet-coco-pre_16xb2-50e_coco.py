# Table 3: full COCO finetuning (mmdet's 50-epoch recipe) from JoinDet
# pretrained on COCO without labels (converted: see the 10% config).
_base_ = 'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py'
custom_imports = dict(imports=['mmdet_joindet'], allow_failed_imports=False)

model = dict(backbone=dict(init_cfg=None))  # was ImageNet-supervised
load_from = 'checkpoints/joindet_deformable-detr_r50-swav_coco.pth'  # was None

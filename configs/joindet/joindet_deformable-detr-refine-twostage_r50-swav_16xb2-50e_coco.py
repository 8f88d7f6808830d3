# JoinDet pretraining on COCO with mmdet's two-stage Deformable DETR with
# iterative box refinement: the pretraining of the finetune configs
# deformable-detr-refine-twostage_r50_joindet-coco-pre_*.
_base_ = './joindet_deformable-detr_r50-swav_16xb2-50e_coco.py'

model = dict(with_box_refine=True, as_two_stage=True)  # was plain

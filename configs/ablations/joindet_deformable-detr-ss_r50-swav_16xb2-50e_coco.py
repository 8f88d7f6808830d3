# The ablations' JoinDet (paper Sec. 4, Table 5 (e), Table 6 "Box Smooth
# Module"): the COCO pretraining config on a single-scale Deformable DETR.
# Finetune its converted checkpoint with the deformable-detr-ss_*_voc0712
# configs of this folder.
_base_ = [
    '../joindet/joindet_deformable-detr_r50-swav_16xb2-50e_coco.py',
    '../_base_/models/deformable-detr-ss_r50.py'
]

model = dict(_base_.single_scale_model)  # was 4 levels

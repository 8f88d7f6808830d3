# Table 5, "DETReg" row: DETReg's selective-search priors (see
# configs/baselines/) on the ablations' single-scale Deformable DETR.
_base_ = [
    '../baselines/detreg_deformable-detr_r50-swav_16xb2-50e_coco.py',
    '../_base_/models/deformable-detr-ss_r50.py'
]

model = dict(_base_.single_scale_model)  # was 4 levels

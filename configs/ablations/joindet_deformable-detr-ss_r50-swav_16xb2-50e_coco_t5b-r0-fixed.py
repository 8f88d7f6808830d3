# Table 5 (b), Table 7 last row: R0 (the backbone's region priors) never
# updated, with large-scale jittering and copy-paste of small priors.
_base_ = './joindet_deformable-detr-ss_r50-swav_16xb2-50e_coco.py'

custom_hooks = [dict(_base_.custom_hooks[0], mode='fixed')]  # was box_smooth

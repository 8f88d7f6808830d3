# Table 6, "Update by NMS": the previous priors that no current prior
# overlaps are kept, beside every current one.
_base_ = './joindet_deformable-detr-ss_r50-swav_16xb2-50e_coco.py'

custom_hooks = [dict(_base_.custom_hooks[0], mode='nms')]  # was box_smooth

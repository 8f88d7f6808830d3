# Table 6, "Directly change": each round replaces the previous one.
_base_ = './joindet_deformable-detr-ss_r50-swav_16xb2-50e_coco.py'

custom_hooks = [dict(_base_.custom_hooks[0], mode='direct')]  # was box_smooth

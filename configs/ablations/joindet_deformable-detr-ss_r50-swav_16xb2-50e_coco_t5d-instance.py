# Table 5 (d): instance priors only.
_base_ = './joindet_deformable-detr-ss_r50-swav_16xb2-50e_coco.py'

custom_hooks = [dict(_base_.custom_hooks[0],
                     sources=('instance', ))]  # was ('region', 'instance')

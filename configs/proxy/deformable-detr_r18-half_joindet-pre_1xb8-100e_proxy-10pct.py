# Stage 4 of the main job: the same finetune from the converted JoinDet
# pretraining (tools/model_converters/joindet_to_deformable_detr.py); give
# it with --cfg-options load_from=...
_base_ = './deformable-detr_r18-half_ssl_1xb8-100e_proxy-10pct.py'

model = dict(backbone=dict(init_cfg=None))  # was the SSL backbone
load_from = 'work_dirs/main_job/finetune/joindet_converted.pth'  # was None
custom_hooks = [
    dict(type='LoadFromCheckHook'),  # refuse a checkpoint that does not fit
    dict(type='EpochSeedHook')
]

# UP-DETR-style random crops on ImageNet-100 without labels (Table 4).
_base_ = './detreg_deformable-detr_r50-swav_16xb2-50e_in100.py'

prior_generator = dict(type='RandomCropPriorGenerator', num_crops=10)
train_pipeline = [
    dict(t, generator=prior_generator)
    if t['type'] == 'GenerateImagePriors' else t for t in _base_.train_pipeline
]  # was selective search
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# UP-DETR-style priors through JoinDet's detector, objective and loop
# (Table 4): 10 random crops per image, drawn anew for every sample.
_base_ = './detreg_deformable-detr_r50-swav_16xb2-50e_coco.py'

prior_generator = dict(type='RandomCropPriorGenerator', num_crops=10)
train_pipeline = [
    dict(t, generator=prior_generator)
    if t['type'] == 'GenerateImagePriors' else t for t in _base_.train_pipeline
]  # was selective search
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

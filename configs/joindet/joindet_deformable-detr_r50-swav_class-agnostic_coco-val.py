# Table 4: a pretrained JoinDet's own 2-way predictions on COCO val2017,
# evaluated class-agnostically (every class merged, top 100: AP, AP50,
# AP75, AR@1/10/100). Use it with any pretraining checkpoint of this
# architecture (COCO or ImageNet-100):
#   python tools/test.py CONFIG work_dirs/<pretraining>/epoch_50.pth
_base_ = './joindet_deformable-detr_r50-swav_16xb2-50e_coco.py'

data_root = 'data/coco/'
backend_args = None
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                   'scale_factor'))
]
test_dataloader = dict(
    _delete_=True,  # was None: pretraining has no test set
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='CocoDataset',
        data_root=data_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_evaluator = dict(
    _delete_=True,
    type='ClassAgnosticCocoMetric',
    ann_file=data_root + 'annotations/instances_val2017.json',
    proposal_nums=(1, 10, 100))
test_cfg = dict(_delete_=True, type='TestLoop')

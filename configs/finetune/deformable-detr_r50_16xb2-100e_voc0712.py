# Table 2, "Supervised" row: mmdet's Deformable DETR from its ImageNet-
# supervised ResNet-50, finetuned on VOC07+12 trainval and tested on VOC07
# test for 100 epochs, LR drop at 70 (DETReg's VOC recipe). VOC in COCO
# format, as mmdet's pascal_voc/*-cocofmt configs read it (mmdet's
# tools/dataset_converters/pascal_voc.py --out-format coco writes it).
_base_ = 'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py'
custom_imports = dict(imports=['mmdet_joindet'], allow_failed_imports=False)

data_root = 'data/VOCdevkit/'
voc = dict(
    data_root=data_root,
    data_prefix=dict(img=''),
    metainfo=dict(
        classes=('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus',
                 'car', 'cat', 'chair', 'cow', 'diningtable', 'dog', 'horse',
                 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa',
                 'train', 'tvmonitor')))
model = dict(bbox_head=dict(num_classes=20))  # was 80
train_dataloader = dict(
    dataset=dict(voc, ann_file='annotations/voc0712_trainval.json'))
val_dataloader = dict(
    dataset=dict(voc, ann_file='annotations/voc07_test.json'))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/voc07_test.json')
test_evaluator = val_evaluator  # all were COCO train2017 / val2017

max_epochs = 100  # was 50
train_cfg = dict(max_epochs=max_epochs, val_interval=10)  # was 1
param_scheduler = [
    dict(_base_.param_scheduler[0], end=max_epochs, milestones=[70])  # was 40
]
default_hooks = dict(checkpoint=dict(interval=10, max_keep_ckpts=3))

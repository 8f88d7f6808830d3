# Table 1, JoinDet row at 10% of COCO: the supervised recipe of the base,
# started from JoinDet pretrained on COCO without labels (every weight of
# the detector: backbone, encoder, decoder, box head), converted with
#   python tools/model_converters/joindet_to_deformable_detr.py \
#     work_dirs/joindet_deformable-detr_r50-swav_16xb2-50e_coco/epoch_50.pth \
#       checkpoints/joindet_deformable-detr_r50-swav_coco.pth
_base_ = './deformable-detr_r50_8xb3-400e_coco-10pct.py'

model = dict(backbone=dict(init_cfg=None))  # was ImageNet-supervised
load_from = 'checkpoints/joindet_deformable-detr_r50-swav_coco.pth'  # was None

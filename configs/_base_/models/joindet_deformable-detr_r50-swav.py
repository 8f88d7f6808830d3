# JoinDet's pretraining model (paper Sec. 3.1): mmdet's Deformable DETR with
# a frozen SwAV ResNet-50, a foreground/background head and DETReg's
# embedding branch. Data, schedule and the prior-update hook come from the
# pretraining configs that inherit this file.
_base_ = 'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py'
custom_imports = dict(imports=['mmdet_joindet'], allow_failed_imports=False)

# SwAV 800 epochs (torchvision layout, `module.` prefix: mmengine strips it;
# the projection head and prototypes are ignored).
swav_checkpoint = ('https://dl.fbaipublicfiles.com/deepcluster/'
                   'swav_800ep_pretrain.pth.tar')
model = dict(
    type='JoinDet',
    backbone=dict(
        frozen_stages=4,  # was 1: the whole SwAV backbone is frozen
        init_cfg=dict(type='Pretrained', checkpoint=swav_checkpoint)),
    bbox_head=dict(
        type='JoinDetHead',
        num_classes=1,  # foreground vs background
        loss_emb=dict(type='L1Loss', loss_weight=1.0)),
    # DETReg's crop augmentation for the embedding targets.
    crop_jitter=dict(
        brightness=0.4, contrast=0.4, saturation=0.4, grayscale=0.2),
    test_cfg=dict(max_per_img=100))

# Dense SwAV (pixel-level swapped prediction of Sinkhorn cluster codes) of
# the ResNet-18 whose feature maps give the eigen-map region priors, on the
# proxy set's unlabeled images, sized for a 2-core CPU. Run:
#   python tools/train_ssl_backbone.py <this file>
# It writes <work_dir>/backbone.pth for `init_cfg=dict(type='Pretrained')`.
# Same data, schedule and optimiser as the BYOL config beside it, so the
# two objectives are compared at equal cost; see DenseSwAV's docstring for
# why a dense objective.
_base_ = './byol_r18_proxy-unlabeled.py'

max_iters = 800
size = 96

model = dict(
    _delete_=True,
    type='DenseSwAV',
    backbone=dict(
        type='ResNet',
        depth=18,
        out_indices=(1, 2, 3),  # a head on C3, C4, C5: every stage trained
        norm_cfg=dict(type='BN', requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    view_size=size,
    num_prototypes=64)  # data_preprocessor: the default (ImageNet, RGB)

# Smaller crops than BYOL's (10-50% of the image instead of 20-100%): each
# view is magnified 1.1-2.4x, near the 2x at which the priors are read,
# and more of its cells fall on the small pasted objects.
# No colour jitter, grayscale, blur or solarisation: the proxy's objects
# differ from the background under them by a colour offset and by being
# smooth, and invariance to exactly those erases them from the features.
# Measured (research/probe_cells.py, held-out AUC of a linear probe of
# object vs background cells, x2, stride 8, centred; random weights 0.70,
# label-trained 0.89): 200 iterations with BYOL's augmentations 0.68,
# without blur/solarisation 0.71, without any 0.76; 800 iterations 0.76
# with them, 0.84 without (docs/benchmarks.md).
train_dataloader = dict(
    dataset=dict(pipeline=[
        dict(type='LoadImageSafely'),
        dict(
            type='TwoViews',
            size=size,
            scale=(0.1, 0.5),
            jitter_prob=0.,
            gray_prob=0.,
            blur_probs=(0., 0.),
            solarize_probs=(0., 0.)),
    ]))

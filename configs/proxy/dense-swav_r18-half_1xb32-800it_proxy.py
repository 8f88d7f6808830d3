# Stage 1 of the main job (python tools/joindet.py demo): the self-supervised
# backbone, DenseSwAV on the proxy's unlabeled images (configs/ssl/), with a
# ResNet-18 at half width so that the whole job fits 30 minutes on 2 cores.
_base_ = '../ssl/dense-swav_r18_proxy-unlabeled.py'

# was 64: 0.32 s/iter instead of 1.0 here (800 iterations: 4.3 minutes)
model = dict(backbone=dict(base_channels=32))

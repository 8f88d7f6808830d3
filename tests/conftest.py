# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Shared fixtures: real photographs and features computed from them."""
import numpy as np
import pytest
import torch

# scikit-image ships these photographs (real scenes, 300-512 px).
PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket', 'camera', 'coins')


def load_photo(name: str) -> np.ndarray:
    """An RGB uint8 [H, W, 3] photo of scikit-image's data folder."""
    from skimage import data
    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3])


@pytest.fixture(scope='session')
def photos():
    return [load_photo(name) for name in PHOTOS]


@pytest.fixture(scope='session')
def real_image_features(photos):
    """C4 (stride 16) features of a randomly initialised ResNet-18.

    One ``[1, 256, h, w]`` tensor per photo, at the photo's own size.
    """
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    net = ResNet(depth=18, out_indices=(2, ), init_cfg=None)
    net.init_weights()
    net.eval()
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    feats = []
    with torch.no_grad():
        for img in photos:
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float()
            feats.append(net((x - mean) / std)[0])
    return feats

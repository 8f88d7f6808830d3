# Copyright (c) mmdet_joindet contributors. All rights reserved.
import numpy as np
import pytest
import torch
from mmdet.registry import TASK_UTILS, TRANSFORMS
from mmdet.structures.bbox import HorizontalBoxes

import mmdet_joindet  # noqa: F401  (registers the modules)


def loaded(shape=(60, 90)):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, shape + (3, ), dtype=np.uint8)
    img[10:40, 20:60] = (200, 30, 30)  # one flat object
    return dict(img=img, img_shape=shape, ori_shape=shape)


@pytest.mark.parametrize('generator', [
    dict(type='SelectiveSearchPriorGenerator', max_priors=30, seed=1),
    dict(type='RandomCropPriorGenerator', num_crops=10, seed=1),
])
def test_equals_the_generator_on_the_image(generator):
    """The online baselines' targets are the generator's boxes, as
    LoadPriors would set them (label 0, clipped, original pixels)."""
    results = loaded()
    expected = TASK_UTILS.build(generator).generate([results['img']])[0]
    t = TRANSFORMS.build(dict(type='GenerateImagePriors', generator=generator))
    out = t(results)
    assert isinstance(out['gt_bboxes'], HorizontalBoxes)
    torch.testing.assert_close(out['gt_bboxes'].tensor, expected.bboxes)
    assert (out['gt_bboxes_labels'] == 0).all()
    assert out['gt_bboxes_labels'].dtype == np.int64
    assert not out['gt_ignore_flags'].any()
    assert len(out['gt_bboxes']) == len(expected.bboxes) > 0


def test_new_crops_each_sample():
    """UP-DETR draws new patches for every sample (a fresh draw)."""
    t = TRANSFORMS.build(
        dict(
            type='GenerateImagePriors',
            generator=dict(type='RandomCropPriorGenerator', seed=3)))
    a = t(loaded())['gt_bboxes'].tensor
    b = t(loaded())['gt_bboxes'].tensor
    assert not torch.equal(a, b)


def test_must_come_before_geometric_transforms():
    t = TRANSFORMS.build(
        dict(
            type='GenerateImagePriors',
            generator=dict(type='RandomCropPriorGenerator')))
    results = loaded()
    results['img_shape'] = (30, 45)  # resized already
    with pytest.raises(ValueError, match='right after the image is loaded'):
        t(results)


def test_refuses_feature_generators():
    with pytest.raises(TypeError, match='prior generator of images'):
        TRANSFORMS.build(
            dict(
                type='GenerateImagePriors',
                generator=dict(type='EigenRegionPriorGenerator')))

# Copyright (c) mmdet_joindet contributors. All rights reserved.
import cv2
import numpy as np
import pytest
import torch

from mmdet_joindet.datasets.transforms import TwoViews


def test_packs_two_augmented_uint8_views(photos):
    np.random.seed(0)
    img = np.ascontiguousarray(photos[1][..., ::-1])
    out = TwoViews(size=40)(dict(img=img, img_path='x.png'))
    assert set(out) == {'inputs', 'data_samples'}
    assert out['data_samples'].shape == (2, 5)
    views = out['inputs']
    assert views.shape == (2, 3, 40, 40) and views.dtype == torch.uint8
    assert not torch.equal(views[0], views[1])
    gray = TwoViews(size=24)(dict(img=img[..., 0]))['inputs']  # [H, W]
    assert gray.shape == (2, 3, 24, 24)


def geometry_only(**kwargs) -> TwoViews:
    """TwoViews without its colour operations: crops and flips only."""
    return TwoViews(
        jitter_prob=0,
        gray_prob=0,
        blur_probs=(0, 0),
        solarize_probs=(0, 0),
        **kwargs)


def test_without_colour_ops_a_view_is_the_resized_image_maybe_flipped():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (60, 60, 3), dtype=np.uint8)
    plain = geometry_only(size=30, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    resized = cv2.resize(img, (30, 30), interpolation=cv2.INTER_LINEAR)
    np.random.seed(1)
    for _ in range(4):
        for view in plain(dict(img=img))['inputs'].permute(0, 2, 3, 1):
            view = view.numpy()
            assert (np.array_equal(view, resized)
                    or np.array_equal(view, resized[:, ::-1]))


def test_geometry_says_which_crop_and_flip_made_each_view():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)
    plain = geometry_only(size=16, scale=(0.1, 0.6))
    np.random.seed(3)
    flips = set()
    for _ in range(8):
        out = plain(dict(img=img))
        for view, (x1, y1, x2, y2,
                   flipped) in zip(out['inputs'].permute(0, 2, 3, 1),
                                   out['data_samples']):
            x1, y1, x2, y2 = (int(v) for v in (x1, y1, x2, y2))
            assert 0 <= x1 < x2 <= 70 and 0 <= y1 < y2 <= 50
            assert (x2 - x1) * (y2 - y1) < 0.65 * 50 * 70
            crop = cv2.resize(
                img[y1:y2, x1:x2], (16, 16), interpolation=cv2.INTER_LINEAR)
            if flipped:
                crop = crop[:, ::-1]
            assert np.array_equal(view.numpy(), crop)
            flips.add(float(flipped))
    assert flips == {0.0, 1.0}


def test_needs_one_probability_per_view():
    with pytest.raises(ValueError, match='per view'):
        TwoViews(blur_probs=(1.0, ))

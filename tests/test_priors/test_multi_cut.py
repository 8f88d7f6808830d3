# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Several cuts per image against TokenCut's dense solver on the graph
that each cut leaves."""
import numpy as np
import pytest
import torch
from test_eigen import as_feats, dense_reference, planted

from mmdet_joindet.priors import (batched_region_boxes, eigen_attention_map,
                                  foreground_mask, multi_cut)


def complete(tokens, tau=0.2):
    """Whether every pair of cells is an edge: TokenCut's generalized
    eigenproblem is then degenerate (every eigenvalue but the first is 1)
    and eigen_attention_map defines no foreground."""
    f = tokens / np.linalg.norm(tokens, axis=1, keepdims=True)
    return bool(((f @ f.T) > tau).all())


def reference_cuts(tokens, num_cuts, valid=None):
    """Each cut by the dense reference, on the cells no earlier cut took."""
    n = len(tokens)
    left = np.ones(n, bool) if valid is None else valid.copy()
    cuts = []
    for _ in range(num_cuts):
        fg = np.zeros(n, bool)
        idx = np.flatnonzero(left)
        if len(idx) >= 2 and not complete(tokens[idx]):
            part, _ = dense_reference(tokens[idx])
            fg[idx[part]] = True
        cuts.append(fg)
        left &= ~fg
    return np.stack(cuts)


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_each_cut_is_the_dense_cut_of_what_is_left(seed):
    rng = np.random.default_rng(seed)
    h, w = 9, 11
    tokens = planted(rng, h * w, groups=4, noise=0.5)
    _, masks = multi_cut(as_feats(tokens, h, w), num_cuts=3)
    ref = reference_cuts(tokens, 3)
    assert masks.shape == (1, 3, h, w)
    for k in range(3):
        assert torch.equal(masks[0, k].flatten(), torch.from_numpy(ref[k]))
    assert ref[1].any()  # the second cut found something: a real check


def test_first_cut_is_the_single_cut(real_image_features):
    for feats in real_image_features:
        maps, masks = multi_cut(feats, num_cuts=3)
        single = eigen_attention_map(feats)
        torch.testing.assert_close(maps[:, 0], single)
        assert torch.equal(masks[:, 0], foreground_mask(single))
        # disjoint foregrounds
        assert (masks.sum(1) <= 1).all()
        assert torch.equal(multi_cut(feats, num_cuts=1)[1][:, 0], masks[:, 0])


def test_batch_with_padding_equals_each_image_alone():
    rng = np.random.default_rng(5)
    h, w = 8, 10
    feats = torch.cat([
        as_feats(planted(rng, h * w, groups=3, noise=0.5), h, w)
        for _ in range(2)
    ])
    valid = torch.ones(2, h, w, dtype=torch.bool)
    valid[1, 6:] = False  # the second image padded
    valid[1, :, 7:] = False
    _, masks = multi_cut(feats, valid, num_cuts=3)
    assert not (masks[1] & ~valid[1]).any()
    for i in range(2):
        tokens = feats[i].flatten(1).T.numpy()
        ref = reference_cuts(tokens, 3, valid[i].flatten().numpy())
        assert torch.equal(masks[i].flatten(1), torch.from_numpy(ref))


def test_edge_cases():
    # one cell, and no valid cell: no foreground at all
    feats = torch.randn(2, 4, 1, 1)
    valid = torch.tensor([True, False]).view(2, 1, 1)
    _, masks = multi_cut(feats, valid, num_cuts=2)
    assert not masks.any()
    # a complete graph (all features alike): TokenCut finds no cut
    same = torch.ones(1, 8, 4, 5)
    assert not multi_cut(same, num_cuts=3)[1].any()
    with pytest.raises(ValueError, match='num_cuts'):
        multi_cut(feats, num_cuts=0)


def test_generator_boxes_every_cut(real_image_features):
    from mmdet.registry import TASK_UTILS

    import mmdet_joindet  # noqa: F401
    feats = real_image_features[0]
    h, w = feats.shape[2:]
    meta = dict(
        img_shape=(16 * h, 16 * w),
        batch_input_shape=(16 * h, 16 * w),
        ori_shape=(16 * h, 16 * w),
        scale_factor=(1.0, 1.0))
    gens = {
        n:
        TASK_UTILS.build(
            dict(
                type='EigenRegionPriorGenerator',
                num_cuts=n,
                max_priors=None,
                centre=True))
        for n in (1, 3)
    }
    out = {n: g.generate_with_maps([feats], [meta]) for n, g in gens.items()}
    from mmdet_joindet.priors import centre_features
    valid = torch.ones(1, h, w, dtype=torch.bool)
    _, masks = multi_cut(centre_features(feats, valid), valid, 3)
    want = torch.cat(batched_region_boxes(masks[0])) * 16
    got = out[3].priors[0].bboxes
    # the same boxes (largest first after the cap's sort)
    key = (lambda b: sorted(map(tuple, b.tolist())))
    assert key(got) == key(want)
    assert len(got) > len(out[1].priors[0].bboxes)
    assert torch.equal(out[3].fg_masks[0], masks[0].any(0))
    torch.testing.assert_close(out[3].eigen_maps[0], out[1].eigen_maps[0])

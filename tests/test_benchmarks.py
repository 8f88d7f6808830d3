# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The reference rows of the prior-quality benchmark: the oracle cut and
the cell labels of the label-trained ceiling backbone."""
import importlib.util
import os
import os.path as osp
import sys

import numpy as np
import pytest

REPO = osp.dirname(osp.dirname(__file__))
BENCHMARKS = osp.join(REPO, 'benchmarks')
RESEARCH = osp.join(REPO, 'research')


def _load(name, folder=BENCHMARKS):
    """A script of ``benchmarks/`` (or ``research/``) as a module (run as
    scripts, they import ``benchmarks/`` modules from PYTHONPATH)."""
    if BENCHMARKS not in sys.path:
        sys.path.append(BENCHMARKS)
    spec = importlib.util.spec_from_file_location(
        name, osp.join(folder, f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def quality():
    return _load('bench_prior_quality')


def _write_set(root, size, box, backgrounds):
    """A COCO-format set as the benchmarks read it (``<root>/images``,
    ``<root>/<root name>.json``): one image per entry of ``backgrounds``
    (None: no ``background`` field), dark noise of ``size`` x ``size`` with
    one bright object in ``box`` (x, y, w, h)."""
    import json

    import cv2
    rng = np.random.default_rng(0)
    os.makedirs(root / 'images')
    x, y, w, h = box
    images, annotations = [], []
    for i, background in enumerate(backgrounds):
        img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
        img[y:y + h, x:x + w] = 220
        cv2.imwrite(str(root / 'images' / f'{i}.png'), img)
        image = dict(id=i + 1, file_name=f'{i}.png', height=size, width=size)
        if background is not None:
            image['background'] = background
        images.append(image)
        annotations.append(
            dict(
                id=i + 1,
                image_id=i + 1,
                bbox=list(box),
                area=w * h,
                iscrowd=0,
                category_id=1))
    with open(root / f'{root.name}.json', 'w') as f:
        json.dump(
            dict(
                images=images,
                annotations=annotations,
                categories=[dict(id=1, name='0')]), f)


def test_oracle_cut_boxes_grid_aligned_objects_exactly(quality):
    img = np.zeros((64, 48, 3), np.uint8)
    gt = np.array([[8, 8, 24, 16], [32, 40, 48, 64]], np.float32)
    boxes = quality.oracle_method(8)(img, gt)
    # largest first
    np.testing.assert_array_equal(boxes, gt[[1, 0]])


def test_oracle_cut_merges_touching_objects_and_snaps_to_the_grid(quality):
    img = np.zeros((32, 32, 3), np.uint8)
    touching = np.array([[0, 0, 8, 8], [8, 0, 16, 8]], np.float32)
    np.testing.assert_array_equal(
        quality.oracle_method(8)(img, touching), [[0, 0, 16, 8]])
    # [1, 7) holds the centres 2 and 6 of 4 px cells: two cells a side
    np.testing.assert_array_equal(
        quality.oracle_method(4)(img, np.array([[1, 1, 7, 7]], np.float32)),
        [[0, 0, 8, 8]])
    # [1, 3) holds the centre 2 of a 4 px cell, not the centre 4 of 8 px
    small = np.array([[1, 1, 3, 3]], np.float32)
    np.testing.assert_array_equal(
        quality.oracle_method(4)(img, small), [[0, 0, 4, 4]])
    assert quality.oracle_method(8)(img, small).shape == (0, 4)
    assert quality.oracle_method(8)(img, np.zeros((0, 4))).shape == (0, 4)


def test_recall_counts_a_hit_once_per_object(quality):
    gts = {1: np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)}
    # the second box overlaps the first object by IoU 0.81, but that
    # object is already found: one-to-one, it finds nothing
    preds = {1: np.array([[0, 0, 10, 10], [1, 1, 10, 10]], np.float32)}
    s = quality.scores(gts, preds)
    assert s['AR50@30'] == 0.5 and s['AR@30'] == pytest.approx(0.5)
    assert s['AR@1'] == pytest.approx(0.5)
    # alone it finds the object at IoU 0.5..0.8: 7 of the 10 thresholds
    s = quality.scores(gts, {1: preds[1][1:]})
    assert s['AR50@30'] == 0.5 and s['AR@30'] == pytest.approx(0.35)
    # a subset of the images
    gts[2], preds[2] = gts[1][:1], np.zeros((0, 4), np.float32)
    assert quality.scores(gts, preds, [2])['AR50@30'] == 0.0


def test_setting_parser_names_bad_input(quality):
    assert quality.parse_setting('2,16,raw,0.3') == (2.0, 1, False, 0.3)
    for bad in ('2,12,raw,0.3', '2,8,centered,0.2', '2,8'):
        with pytest.raises(Exception, match='--setting must be'):
            quality.parse_setting(bad)


def test_every_sweep_grid_has_its_oracle_row(quality):
    # each setting's cells, in original-image pixels, are stride / scale;
    # the oracle rows bound the cut on exactly those grids (x4 at stride 8
    # gives the finest, 2 px)
    settings = quality.sweep_settings()
    cells = {8 * 2**level / scale for scale, level, _, _ in settings}
    assert cells == set(quality.ORACLE_STRIDES)
    assert min(cells) == 2
    assert len(set(settings)) == len(settings)


def test_split_by_background_names_textures_and_photographs(quality):
    images = [
        dict(id=1, background='gravel'),
        dict(id=2, background='coffee'),
        dict(id=3, background='brick')
    ]
    groups = quality.split_by_background(images)
    assert [im['id'] for im in groups['textures']] == [1, 3]
    assert [im['id'] for im in groups['photographs']] == [2]
    assert quality.split_by_background(images + [dict(id=4)]) is None


def test_recall_by_picture_counts_each_pictures_objects(quality, capsys):
    images = [
        dict(id=1, background='gravel'),
        dict(id=2, background='coffee'),
        dict(id=3, background='gravel')
    ]
    box = np.array([[0, 0, 10, 10]], np.float32)
    gts = {1: box, 2: np.concatenate([box, box + 20]), 3: box + 40}
    # image 1's object found, one of image 2's, none of image 3's; a box of
    # an image counts for that image only
    preds = {1: box, 2: box + 20, 3: box}
    pictures = quality.split_by_picture(images)
    assert list(pictures) == ['coffee', 'gravel']
    assert [im['id'] for im in pictures['gravel']] == [1, 3]
    np.testing.assert_allclose(
        quality.group_recall(pictures, gts, preds), [50.0, 50.0])
    assert quality.split_by_picture(images + [dict(id=4)]) is None
    none = {i: np.zeros((0, 4), np.float32) for i in gts}
    quality.by_background(images, gts, [('found', preds), ('none', none)])
    out = capsys.readouterr().out.splitlines()
    # textures (gravel) 1 of 2, photographs (coffee) 1 of 2
    assert out[2].split()[:2] == ['1', 'found']
    assert out[2].split()[-2:] == ['50.0', '50.0']
    assert out[-2].split() == ['coffee', '1', '2', '50.0', '0.0']
    assert out[-1].split() == ['gravel', '2', '2', '50.0', '0.0']


def test_tables_by_background_carry_the_finest_oracle(quality, tmp_path,
                                                      monkeypatch, capsys):
    """The whole script on four tiny images: the by-background tables bound
    the cut with the oracle of the finest grid, the one the best settings
    read. Each object is a 6 px square off the 8 px grid: the 2 px oracle
    boxes it exactly, the 8 px one misses it (IoU 0.19)."""
    root = tmp_path / 'val'
    _write_set(root, 32, (6, 6, 6, 6), ['gravel', 'coffee', 'brick', 'coffee'])
    monkeypatch.setattr('sys.argv', [
        'bench_prior_quality.py', '--data',
        str(root), '--no-selective-search', '--setting', '1,8,centred,0.2'
    ])
    quality.main()
    out = capsys.readouterr().out.splitlines()
    r50_30 = {
        line[:60].strip(): line.split()[-3]
        for line in out if line.startswith('oracle')
    }
    finest = min(quality.ORACLE_STRIDES)
    assert r50_30[
        f'oracle cut: ground-truth foreground, {finest} px grid'] == '100.0'
    assert r50_30['oracle cut: ground-truth foreground, 8 px grid'] == '0.0'
    head = out.index('R50@30 by background: textures (2 obj)  '
                     'photographs (2 obj)')
    oracle = out[head + 3].split()  # random weights, random crops, oracle
    assert ' '.join(oracle[:-2]).endswith(f'{finest} px grid')
    assert oracle[-2:] == ['100.0', '100.0']
    assert out[-2].split()[-1] == out[-1].split()[-1] == '100.0'


def test_ceiling_labels_cells_by_the_smallest_box():
    ceiling = _load('label_ceiling_backbone', RESEARCH)
    boxes = np.array([[0, 0, 32, 32], [8, 8, 24, 24]], np.float32)
    got = ceiling.cell_labels(boxes, np.array([3, 5]), (5, 4), 8, 10)
    expected = np.full((5, 4), 10)
    expected[:4, :4] = 3
    expected[1:3, 1:3] = 5
    np.testing.assert_array_equal(got, expected)
    # a cell is in a box when its centre is: (12, 12) is, (4, 4) is not
    got = ceiling.cell_labels(
        np.array([[5, 5, 13, 13]], np.float32), np.array([0]), (2, 2), 8, 10)
    np.testing.assert_array_equal(got, [[10, 10], [10, 0]])


@pytest.fixture(scope='module')
def probe():
    return _load('probe_cells', RESEARCH)


def test_probe_auc_and_logistic_fit_match_scikit_learn(probe):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    rng = np.random.default_rng(1)
    scores = np.round(rng.normal(size=400), 1)  # many ties
    labels = rng.random(400) < 0.3
    assert probe.auc(scores, labels) == pytest.approx(
        roc_auc_score(labels, scores), abs=1e-12)
    with pytest.raises(ValueError, match='both classes'):
        probe.auc(scores, np.zeros(400, bool))
    x = rng.normal(size=(2000, 8))
    y = x @ rng.normal(size=8) + 2 * rng.normal(size=2000) > 0.5
    w = probe.fit_logistic(x, y, l2=1e-3)
    # scikit-learn: C * sum(loss) + |w|^2 / 2, intercept not penalised
    ref = LogisticRegression(
        C=1 / (2 * len(x) * 1e-3), tol=1e-10, max_iter=10000).fit(x, y)
    np.testing.assert_allclose(w[:-1], ref.coef_[0], atol=1e-4)
    assert w[-1] == pytest.approx(ref.intercept_[0], abs=1e-4)


def test_probe_centring_removes_each_image_offset(probe):
    """Objects shift a cell by a small step along one direction while each
    image adds a large offset of its own: centred cells separate, raw ones
    much less; label-blind features score about 0.5."""
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 50)
    y = rng.random(len(groups)) < 0.3
    offsets = 5 * rng.normal(size=(40, 16))
    step = np.eye(16)[0]
    x = offsets[groups] + 0.3 * rng.normal(size=(len(groups), 16))
    x = x + y[:, None] * step
    centred = probe.probe_auc(x, y, groups, centred=True)
    raw = probe.probe_auc(x, y, groups, centred=False)
    assert centred > 0.95 and raw < centred - 0.1
    blind = rng.normal(size=x.shape)
    assert abs(probe.probe_auc(blind, y, groups, centred=True) - 0.5) < 0.1


def test_probe_labels_the_cells_under_the_boxes(probe, tmp_path):
    """A stand-in backbone whose one feature is the mean brightness of its
    8 px cell: on images x2, exactly the cells labelled object are bright
    (white squares on 4 px cells of the originals, one square per image)."""
    import cv2
    import torch
    os.makedirs(tmp_path / 'images')
    images, gts = [], {}
    for i, (x1, y1) in enumerate([(4, 8), (20, 12)]):
        img = np.zeros((32, 40, 3), np.uint8)
        img[y1:y1 + 8, x1:x1 + 12] = 255
        cv2.imwrite(str(tmp_path / 'images' / f'{i}.png'), img)
        images.append(dict(id=i, file_name=f'{i}.png'))
        gts[i] = np.array([[x1, y1, x1 + 12, y1 + 8]], np.float32)

    def net(x):
        return [torch.nn.functional.avg_pool2d(x, 8)[:, :1]]

    x, y, g = probe.sample_cells(
        probe.image_cells(net, str(tmp_path), images, gts, 2, 0), 500)
    assert len(x) == 2 * 8 * 10 and y.sum() == 2 * 6
    np.testing.assert_array_equal(y, x[:, 0] > 0)
    np.testing.assert_array_equal(np.bincount(g), [80, 80])


def test_backbone_list_labels_each_checkpoint(quality):
    assert quality.backbone_list(['a=x/b.pth', 'work/run/backbone.pth'
                                  ]) == [('a', 'x/b.pth'),
                                         ('run', 'work/run/backbone.pth'),
                                         ('random', None)]


def test_probe_cli_prints_an_auc_per_backbone(probe, tmp_path, monkeypatch,
                                              capsys):
    tmp_path = tmp_path / 'val'
    _write_set(tmp_path, 64, (8, 16, 24, 24), [None] * 4)
    monkeypatch.setattr(
        'sys.argv',
        ['probe_cells.py', '--data',
         str(tmp_path), '--cells', '50'])
    probe.main()
    out = capsys.readouterr().out.splitlines()
    name, *values = out[-1].split()
    raw, centred, same, other, obj_bg, bg_bg = map(float, values)
    assert name == 'random' and 0 <= raw <= 1 and 0 <= centred <= 1
    assert all(-1 <= v <= 1 for v in (same, obj_bg, bg_bg))
    assert np.isnan(other)  # one object per image: no pair of two objects
    monkeypatch.setattr('sys.argv', [
        'probe_cells.py', '--data',
        str(tmp_path), '--background', 'textures'
    ])
    with pytest.raises(SystemExit, match='name their .background'):
        probe.main()


def test_cosine_means_match_a_loop_over_pairs(probe):
    rng = np.random.default_rng(3)
    unit = probe.unit_cells(rng.normal(size=(60, 5)), None, False)
    owner = rng.integers(-2, 4, 60)  # -2: left out
    owner[0] = 5  # one cell of object 5, none of object 4
    sums, pairs = np.zeros(4), np.zeros(4)
    for i in range(60):
        for j in range(60):
            a, b = owner[i], owner[j]
            if i == j or a < -1 or b < -1:
                continue
            if a >= 0 and b >= 0:
                kind = 0 if a == b else 1
            elif a == -1 and b == -1:
                kind = 3
            elif a >= 0:  # object-background, counted once per pair
                kind = 2
            else:
                continue
            sums[kind] += unit[i] @ unit[j]
            pairs[kind] += 1
    got_sums, got_pairs = probe.cosine_means(unit, owner)
    np.testing.assert_allclose(got_pairs, pairs)
    np.testing.assert_allclose(got_sums, sums, atol=1e-9)
    # no objects at all: only background pairs
    s, n = probe.cosine_means(unit[:3], np.array([-1, -1, -2]))
    np.testing.assert_allclose(n, [0, 0, 0, 2])
    assert s[3] == pytest.approx(2 * unit[0] @ unit[1])


def test_prior_store_benchmark_runs_and_reads_back(monkeypatch, capsys):
    bench = _load('bench_prior_store')
    offsets, boxes, scores = bench.simulated_round(50, 30)
    assert offsets[0] == 0 and offsets[-1] == len(boxes) == len(scores)
    assert (np.diff(offsets) <= 30).all() and (boxes[:, 2:]
                                               > boxes[:, :2]).all()
    monkeypatch.setattr('sys.argv', [
        'bench_prior_store.py', '--images', '300', '--lookups', '200',
        '--workers', '1'
    ])
    bench.main()
    out = capsys.readouterr().out
    assert 'round on disk:' in out and 'us per image' in out
    worker = out.splitlines()[-1].split()
    assert worker[0] == '0' and float(worker[1]) > 0

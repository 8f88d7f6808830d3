# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The digits-on-photos proxy detection set (issue 6, item 1)."""
import hashlib
import importlib.util
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from mmdet_joindet.datasets.proxy import DIGIT_CLASSES, build_proxy_dataset

REPO = osp.dirname(osp.dirname(osp.dirname(__file__)))
TOOL = osp.join(REPO, 'tools/misc/make_proxy_data.py')
SMALL = dict(size=96, num_unlabeled=12, num_train=10, num_val=6)


def _hashes(root: str) -> dict:
    """sha256 of every file under ``root``, by relative path."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            path = osp.join(d, f)
            with open(path, 'rb') as fp:
                digest = hashlib.sha256(fp.read()).hexdigest()
            out[osp.relpath(path, root)] = digest
    return out


@pytest.fixture(scope='module')
def built(tmp_path_factory):
    """The small set, built once per blend with the masks kept."""
    out = {}
    for blend in ('feather', 'hard'):
        root = str(tmp_path_factory.mktemp(blend))
        out[blend] = (root,
                      build_proxy_dataset(
                          root, seed=3, blend=blend, keep_masks=True, **SMALL))
    return out


def test_deterministic_by_seed(built, tmp_path):
    root, _ = built['feather']
    again = str(tmp_path / 'again')
    build_proxy_dataset(again, seed=3, **SMALL)
    ref = _hashes(root)
    assert len(ref) == 12 + 10 + 6 + 7  # images, 6 jsons, the manifest
    assert _hashes(again) == ref
    other = str(tmp_path / 'other')
    build_proxy_dataset(other, seed=4, **SMALL)
    hashes = _hashes(other)
    assert hashes.keys() == ref.keys()
    assert all(hashes[k] != ref[k] for k in ref if k.endswith('.png'))
    assert hashes['train/train.json'] != ref['train/train.json']


@pytest.mark.parametrize('blend', ['feather', 'hard'])
def test_boxes_lie_on_their_masks(built, blend):
    root, result = built[blend]
    for split, n in (('train', 10), ('val', 6)):
        coco = result['coco'][split]
        masks = result['masks'][split]
        assert len(coco['images']) == len(masks) == n
        anns = coco['annotations']
        assert [a['id'] for a in anns] == list(range(1, len(anns) + 1))
        assert len(anns) == sum(len(m) for m in masks) >= n
        for im, alphas in zip(coco['images'], masks):
            assert im['height'] == im['width'] == 96
            img = cv2.imread(osp.join(root, split, 'images', im['file_name']))
            assert img.shape == (96, 96, 3)
            mine = [a for a in anns if a['image_id'] == im['id']]
            assert 1 <= len(mine) == len(alphas) <= 6
            for ann, alpha in zip(mine, alphas):
                assert alpha.shape == (96, 96) and alpha.dtype == np.float32
                obj = alpha > 0.5
                ys, xs = np.nonzero(obj)
                # xywh of the tight box, x2/y2 exclusive
                assert ann['bbox'] == [
                    xs.min(),
                    ys.min(),
                    xs.max() + 1 - xs.min(),
                    ys.max() + 1 - ys.min()
                ]
                x, y, w, h = (int(v) for v in ann['bbox'])
                assert obj[y:y + h, x:x + w].mean() >= 0.3
                assert ann['area'] == obj.sum()
                assert 1 <= ann['category_id'] <= 10
                assert w >= 2 and h >= 2 and w * h <= 96 * 96 * 0.6**2
            boxes = [a['bbox'] for a in mine]
            for i in range(len(boxes)):
                for j in range(i):
                    assert _iou(boxes[i], boxes[j]) < 0.3


def test_each_image_names_its_background(tmp_path, monkeypatch):
    """With flat-coloured stand-in backgrounds, the pixels no object
    touches have exactly the colour of the background the entry names."""
    from mmdet_joindet.datasets.proxy import builder
    colours = {
        'flat_a': (10, 200, 30),
        'flat_b': (250, 40, 120),
        'flat_c': (90, 90, 220)
    }
    monkeypatch.setattr(
        builder, '_backgrounds', lambda: tuple(
            (n, np.full((150, 170, 3), c, np.uint8))
            for n, c in colours.items()))
    result = build_proxy_dataset(
        str(tmp_path), seed=1, keep_masks=True, **SMALL)
    seen = set()
    for split in ('unlabeled', 'train', 'val'):
        coco, masks = result['coco'][split], result['masks'][split]
        for im, alphas in zip(coco['images'], masks):
            img = cv2.imread(
                osp.join(str(tmp_path), split, 'images', im['file_name']))
            free = np.all([a == 0 for a in alphas], axis=0)
            assert free.sum() > 0.3 * free.size
            assert (img[free] == colours[im['background']]).all()
            seen.add(im['background'])
    assert seen == set(colours)


def test_real_backgrounds_are_named(built):
    from mmdet_joindet.datasets.photos import PHOTO_NAMES
    from mmdet_joindet.datasets.proxy.builder import TEXTURE_NAMES
    _, result = built['feather']
    names = {
        im['background']
        for split in ('unlabeled', 'train', 'val')
        for im in result['coco'][split]['images']
    }
    used = result['manifest']['options']['backgrounds']
    assert names and names <= set(used) <= set(PHOTO_NAMES + TEXTURE_NAMES)


def test_backgrounds_can_be_chosen(tmp_path):
    result = build_proxy_dataset(
        str(tmp_path / 'tex'), seed=2, backgrounds=['brick', 'grass'], **SMALL)
    names = {
        im['background']
        for split in ('unlabeled', 'train', 'val')
        for im in result['coco'][split]['images']
    }
    assert names == {'brick', 'grass'}
    assert result['manifest']['options']['backgrounds'] == ['brick', 'grass']
    for bad in (['brick', 'no_such_picture'], []):
        with pytest.raises(ValueError, match='choose among'):
            build_proxy_dataset(
                str(tmp_path / 'bad'), seed=2, backgrounds=bad, **SMALL)


def _iou(a, b):
    iw = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return iw * ih / (a[2] * a[3] + b[2] * b[3] - iw * ih)


def test_subsets_and_manifest(built):
    root, result = built['feather']
    manifest = json.load(open(osp.join(root, 'manifest.json')))
    assert manifest == result['manifest']
    assert manifest['seed'] == 3
    assert manifest['options']['blend'] == 'feather'
    train = result['coco']['train']
    ids = [im['id'] for im in train['images']]
    assert ids == list(range(1, 11))
    for name, pct in (('train_1pct', 0.01), ('train_10pct', 0.1)):
        sub = json.load(open(osp.join(root, 'train', f'{name}.json')))
        sub_ids = [im['id'] for im in sub['images']]
        n = max(1, round(len(ids) * pct))
        assert len(sub_ids) == len(set(sub_ids)) == n
        assert set(sub_ids) <= set(ids)
        drawn = np.random.default_rng(3).choice(ids, n, replace=False)
        assert sub_ids == manifest['subsets'][name] == sorted(drawn.tolist())
        assert sub['annotations'] == [
            a for a in train['annotations'] if a['image_id'] in sub_ids
        ]
        assert manifest['counts'][name] == n
    for rel, digest in manifest['sha256'].items():
        with open(osp.join(root, rel), 'rb') as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest
    assert len(manifest['sha256']) == 6  # the jsons


def test_object_centric_split(built, tmp_path):
    """``num_object_centric`` adds one large, roughly centred digit per
    image on the same backgrounds, and leaves every other file's bytes
    (the manifest aside) as they were."""
    root, _ = built['feather']
    out = str(tmp_path / 'centric')
    result = build_proxy_dataset(
        out, seed=3, num_object_centric=8, keep_masks=True, **SMALL)
    ref, hashes = _hashes(root), _hashes(out)
    del ref['manifest.json']
    assert {k: hashes[k] for k in ref} == ref
    extra = sorted(set(hashes) - set(ref) - {'manifest.json'})
    assert extra == [
        'object_centric/images/%06d.png' % i for i in range(1, 9)
    ] + ['object_centric/object_centric.json']
    coco = json.load(open(osp.join(out, 'object_centric/object_centric.json')))
    assert coco['annotations'] == [] and len(coco['images']) == 8
    assert coco == result['coco']['object_centric']
    assert result['manifest']['counts']['object_centric'] == 8
    assert result['manifest']['sha256'][
        'object_centric/object_centric.json'] == hashes[
            'object_centric/object_centric.json']
    for im, alphas in zip(coco['images'], result['masks']['object_centric']):
        assert len(alphas) == 1
        ys, xs = np.nonzero(alphas[0] > 0.5)
        w, h = xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()
        # the scan's rectangle: side 0.4..0.8 of 96 px, aspect 3:4..4:3;
        # a digit's tight box is >= 0.8 of its scan's height (all 1,797)
        assert 0.8 * 0.4 * 96 * np.sqrt(0.75) - 1 <= h <= 96
        assert max(w, h) <= 0.8 * 96 * np.sqrt(4 / 3) + 1
        # centre within 0.15 * 96 of the image's, plus the digit's offset
        # inside its rectangle (<= 0.175 of its width, 0.1 of its height)
        assert abs((xs.min() + xs.max() + 1) / 2 - 48) <= 14.4 + 0.175 * 89
        assert abs((ys.min() + ys.max() + 1) / 2 - 48) <= 14.4 + 0.1 * 89
        img = cv2.imread(
            osp.join(out, 'object_centric/images', im['file_name']))
        assert img.shape == (96, 96, 3)
    with pytest.raises(ValueError, match='num_object_centric'):
        build_proxy_dataset(
            str(tmp_path / 'bad'), num_object_centric=-1, **SMALL)


def test_labeled_images_are_disjoint_from_unlabeled_and_val(built):
    """No image (by content) of the labeled train split, hence of its
    1%/10% subsets, is in the unlabeled pretraining set or in val."""
    root, result = built['feather']

    def digests(split):
        out = set()
        for im in result['coco'][split]['images']:
            path = osp.join(root, split, 'images', im['file_name'])
            with open(path, 'rb') as f:
                out.add(hashlib.sha256(f.read()).hexdigest())
        return out

    train, unlabeled, val = (digests(s) for s in ('train', 'unlabeled', 'val'))
    assert len(train) == 10 and len(unlabeled) == 12 and len(val) == 6
    assert not train & unlabeled and not train & val and not unlabeled & val


def test_coco_jsons_load(built):
    root, _ = built['feather']
    expected = {
        'unlabeled/unlabeled.json': 12,
        'train/train.json': 10,
        'val/val.json': 6,
        'train/train_1pct.json': 1,
        'train/train_10pct.json': 1
    }
    for rel, n in expected.items():
        coco = COCO(osp.join(root, rel))
        assert len(coco.getImgIds()) == n
        assert [c['name'] for c in coco.loadCats(coco.getCatIds())
                ] == list(DIGIT_CLASSES)
        if rel.startswith('unlabeled'):
            assert coco.dataset['annotations'] == []
        else:
            assert len(coco.getAnnIds()) >= n
        for im in coco.loadImgs(coco.getImgIds()):
            folder = osp.dirname(osp.join(root, rel))
            assert osp.isfile(osp.join(folder, 'images', im['file_name']))
    # the unlabeled images' withheld boxes: the same images, with objects
    unlabeled = COCO(osp.join(root, 'unlabeled/unlabeled.json'))
    gt = COCO(osp.join(root, 'unlabeled/unlabeled_gt.json'))
    assert gt.dataset['images'] == unlabeled.dataset['images']
    assert len(gt.getAnnIds()) >= len(gt.getImgIds())


def test_hard_and_feather_differ_at_edges(built):
    (froot, feather), (hroot, hard) = built['feather'], built['hard']
    grads = {'feather': [], 'hard': []}
    for split in ('train', 'val'):
        for fm, hm in zip(feather['masks'][split], hard['masks'][split]):
            assert len(fm) == len(hm)  # the same layout
            for fa, ha in zip(fm, hm):
                assert set(np.unique(ha)) <= {0., 1.}
                soft = (fa > 0.02) & (fa < 0.98)
                assert soft.sum() > 0 and (soft & (ha == 1)).any()
        for blend, root in (('feather', froot), ('hard', hroot)):
            result = built[blend][1]
            for im, alphas in zip(result['coco'][split]['images'],
                                  hard['masks'][split]):
                img = cv2.imread(
                    osp.join(root, split, 'images', im['file_name']),
                    cv2.IMREAD_GRAYSCALE).astype(np.float32)
                mag = np.hypot(
                    cv2.Sobel(img, cv2.CV_32F, 1, 0),
                    cv2.Sobel(img, cv2.CV_32F, 0, 1))
                for a in alphas:
                    m = a.astype(np.uint8)
                    k = np.ones((3, 3), np.uint8)
                    edge = cv2.dilate(m, k) != cv2.erode(m, k)
                    grads[blend].append(mag[edge].mean())
    # feathered, colour-matched edges are much weaker than hard ones
    assert np.mean(grads['feather']) < 0.6 * np.mean(grads['hard'])


def test_blend_none_keeps_the_boxes_and_paints_nothing(built, tmp_path):
    from mmdet_joindet.datasets.photos import photo_crop
    from mmdet_joindet.datasets.proxy.builder import SPLITS, _backgrounds
    froot, feather = built['feather']
    root = str(tmp_path / 'none')
    bare = build_proxy_dataset(
        root, seed=3, blend='none', keep_masks=True, **SMALL)
    photos = [photo for _, photo in _backgrounds()]
    for split in ('unlabeled', 'train', 'val'):
        assert bare['coco'][split] == feather['coco'][split]
        for i, (im, alphas) in enumerate(
                zip(feather['coco'][split]['images'],
                    feather['masks'][split])):
            got = cv2.imread(osp.join(root, split, 'images', im['file_name']))
            rng = np.random.default_rng([3, SPLITS.index(split), i])
            crop = photo_crop(rng, SMALL['size'], SMALL['size'], photos)[0]
            bare_crop = np.clip(np.rint(crop), 0, 255).astype(np.uint8)
            assert np.array_equal(got, bare_crop)
            painted = cv2.imread(
                osp.join(froot, split, 'images', im['file_name']))
            for a in alphas:  # feather painted each object there
                assert (painted[a > 0.5] != got[a > 0.5]).any()


def test_cli(tmp_path):
    spec = importlib.util.spec_from_file_location('make_proxy_data', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    out = str(tmp_path / 'cli')
    tool.main([
        '--out', out, '--size', '64', '--num-unlabeled', '2', '--num-train',
        '3', '--num-val', '2', '--num-object-centric', '2', '--seed', '1',
        '--blend', 'hard'
    ])
    manifest = json.load(open(osp.join(out, 'manifest.json')))
    assert manifest['options']['blend'] == 'hard'
    assert manifest['options']['size'] == 64
    counts = manifest['counts']
    assert (counts['unlabeled'], counts['train'], counts['val'],
            counts['object_centric']) == (2, 3, 2, 2)
    with pytest.raises(ValueError):
        build_proxy_dataset(str(tmp_path / 'bad'), blend='soft')


def test_textures_keyword_takes_the_textures_that_load(tmp_path):
    from mmdet_joindet.datasets.proxy.builder import TEXTURE_NAMES
    small = dict(SMALL, num_unlabeled=2, num_train=2, num_val=2)
    result = build_proxy_dataset(
        str(tmp_path / 'tex'), backgrounds='textures', **small)
    used = result['manifest']['options']['backgrounds']
    assert used and set(used) <= set(TEXTURE_NAMES)
    images = result['coco']['train']['images']
    assert {im['background'] for im in images} <= set(used)

# Copyright (c) mmdet_joindet contributors. All rights reserved.
import pickle
import shutil

import numpy as np
import pytest
import torch
from mmdet.registry import DATASETS
from mmengine.dataset import pseudo_collate

from mmdet_joindet.datasets import (ImageSkippedWarning, PriorStore,
                                    SelfSupervisedDataset)

SIZES = [(40, 60), (50, 50), (30, 70), (45, 64)]  # (h, w) per image
META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
             'flip', 'flip_direction', 'prior_index', 'prior_round')


def train_pipeline(flip_prob=0.5):
    return [
        dict(type='LoadImageSafely'),
        dict(type='LoadPriors'),
        dict(type='Resize', scale=(50, 30), keep_ratio=False),  # (w, h)
        dict(type='RandomFlip', prob=flip_prob),
        dict(type='PackDetInputs', meta_keys=META_KEYS)
    ]


def priors_of_round(round_idx):
    """Per image ``[k, 4]`` boxes inside the image (k = 2 + image index)."""
    rng = np.random.default_rng(round_idx)
    boxes, scores = [], []
    for i, (h, w) in enumerate(SIZES):
        xy = rng.uniform(0, 0.5, (2 + i, 2)) * [w, h]
        wh = rng.uniform(0.1, 0.5, (2 + i, 2)) * [w, h]
        boxes.append(np.concatenate([xy, xy + wh], 1).astype(np.float32))
        scores.append(rng.uniform(0, 1, 2 + i).astype(np.float32))
    return boxes, scores


@pytest.fixture
def folder(tmp_path, image_writer):
    for i, size in enumerate(SIZES):
        image_writer(str(tmp_path / 'imgs' / f'{i}.png'), size=size)
    return tmp_path / 'imgs'


def commit(root, ds, round_idx, priors=None):
    boxes, scores = priors or priors_of_round(round_idx)
    store = PriorStore(str(root))
    store.write_round(round_idx, boxes, scores, ds.fingerprint())
    store.commit(round_idx)
    return boxes


def make(folder, pipeline=None, **kwargs):
    return SelfSupervisedDataset(
        dataset=dict(
            type='ImageFolderDataset', data_prefix=dict(img=str(folder))),
        pipeline=pipeline or train_pipeline(),
        **kwargs)


def expected_boxes(stored, sample):
    """The stored boxes moved by Resize (scale factor) and RandomFlip."""
    sx, sy = sample.scale_factor
    out = stored * np.array([sx, sy, sx, sy], np.float32)
    if sample.flip:
        assert sample.flip_direction == 'horizontal'
        width = sample.img_shape[1]
        out = np.stack(
            [width - out[:, 2], out[:, 1], width - out[:, 0], out[:, 3]], 1)
    return out


def bboxes_of(sample):
    boxes = sample.gt_instances.bboxes
    return getattr(boxes, 'tensor', boxes).numpy()


def test_priors_follow_resize_and_flip(folder, tmp_path):
    ds = make(folder)
    stored = commit(tmp_path / 'priors', ds, 0)
    ds.set_prior_root(str(tmp_path / 'priors'))
    assert len(ds) == 4 and ds.metainfo['classes'] == ('object', )
    np.random.seed(0)
    flips = set()
    for _ in range(3):
        for i, (h, w) in enumerate(SIZES):
            out = ds[i]
            sample = out['data_samples']
            assert out['inputs'].shape == (3, 30, 50)
            assert sample.prior_index == i and sample.prior_round == 0
            assert sample.ori_shape == (h, w)
            np.testing.assert_allclose(sample.scale_factor, (50 / w, 30 / h))
            np.testing.assert_allclose(
                bboxes_of(sample),
                expected_boxes(stored[i], sample),
                rtol=1e-5,
                atol=1e-4)
            assert (sample.gt_instances.labels == 0).all()
            assert sample.gt_instances.labels.dtype == torch.int64
            flips.add(sample.flip)
    assert flips == {True, False}


def test_next_item_sees_a_new_round(folder, tmp_path):
    root = tmp_path / 'priors'
    ds = make(folder, train_pipeline(flip_prob=0.0), prior_root=str(root))
    commit(root, ds, 0)
    assert ds[1]['data_samples'].prior_round == 0
    new = commit(root, ds, 1)
    sample = ds[1]['data_samples']
    assert sample.prior_round == 1 and ds.reader.round == 1
    np.testing.assert_allclose(
        bboxes_of(sample), expected_boxes(new[1], sample), rtol=1e-5)


def test_needs_a_prior_store(folder, tmp_path):
    ds = make(folder)
    with pytest.raises(RuntimeError, match='PriorUpdateHook.*prior_root'):
        ds[0]
    # a store computed for another image list is refused
    store = PriorStore(str(tmp_path / 'priors'))
    store.write_round(0, *priors_of_round(0), fingerprint='another-list')
    store.commit(0)
    ds.set_prior_root(str(tmp_path / 'priors'))
    with pytest.raises(ValueError, match='another image list'):
        ds[0]


def test_fingerprint(folder, tmp_path, image_writer):
    ds = make(folder)
    fp = ds.fingerprint()
    assert isinstance(fp, str) and len(fp) == 16
    assert make(folder).fingerprint() == fp  # stable
    moved = tmp_path / 'elsewhere' / 'imgs'
    shutil.copytree(folder, moved)
    assert make(moved).fingerprint() == fp  # paths relative to the prefix
    image_writer(str(moved / '9.png'))
    assert make(moved).fingerprint() != fp


def test_broken_images_are_replaced(folder, tmp_path):
    (folder / '1.png').write_bytes(b'')
    data = (folder / '2.png').read_bytes()
    (folder / '2.png').write_bytes(data[:len(data) // 2])
    root = tmp_path / 'priors'
    ds = make(folder, prior_root=str(root))
    commit(root, ds, 0)
    np.random.seed(0)
    with pytest.warns(ImageSkippedWarning) as record:
        got = {
            ds[i]['data_samples'].prior_index
            for i in range(4)
            for _ in range(5)
        }
    assert got == {0, 3}
    assert sorted(str(r.message).split(':')[0] for r in record) == [
        f'skipped image {folder}/1.png', f'skipped image {folder}/2.png'
    ]
    assert ds._unusable == {1, 2}


def test_all_broken_is_a_clear_error(tmp_path):
    folder = tmp_path / 'imgs'
    folder.mkdir()
    for i in range(3):
        (folder / f'{i}.jpg').write_bytes(b'\xff\xd8' + bytes(100 * i))
    ds = make(folder, prior_root=str(tmp_path / 'priors'))
    with pytest.warns(ImageSkippedWarning):
        with pytest.raises(
                RuntimeError,
                match=r"no usable image in ImageFolderDataset\('.*imgs'\): "
                'all 3 files failed to load'):
            ds[1]


def test_test_dataset_keeps_indices(folder, tmp_path):
    (folder / '2.png').write_bytes(b'junk')
    ds = make(folder)  # no prior store needed
    view = ds.test_dataset([
        dict(type='LoadImageSafely'),
        dict(type='Resize', scale=(32, 32), keep_ratio=True),
        dict(type='PackDetInputs', meta_keys=('img_path', 'scale_factor'))
    ])
    assert len(view) == 4
    with pytest.warns(ImageSkippedWarning):
        items = [view[i] for i in range(4)]
    assert items[2] is None
    for i in (0, 1, 3):
        assert items[i]['data_samples'].prior_index == i
        assert items[i]['data_samples'].img_path.endswith(f'{i}.png')
    assert view[-1]['data_samples'].prior_index == 3


def test_pickles_cheaply(folder, tmp_path):
    root = tmp_path / 'priors'
    ds = DATASETS.build(
        dict(
            type='SelfSupervisedDataset',
            dataset=dict(
                type='ImageFolderDataset', data_prefix=dict(img=str(folder))),
            pipeline=train_pipeline(flip_prob=0.0),
            prior_root=str(root)))
    commit(root, ds, 0)
    ds[0]  # the reader has mapped a round
    blob = pickle.dumps(ds)
    assert len(blob) < 20000
    copy = pickle.loads(blob)
    assert copy.fingerprint() == ds.fingerprint()
    np.testing.assert_array_equal(
        bboxes_of(copy[2]['data_samples']), bboxes_of(ds[2]['data_samples']))


@pytest.mark.parametrize('context', ['fork', 'spawn'])
def test_dataloader_workers(folder, tmp_path, context):
    """Workers (pickled copies under spawn) see each committed round."""
    root = tmp_path / 'priors'
    ds = make(folder, train_pipeline(flip_prob=0.0), prior_root=str(root))
    commit(root, ds, 0)
    loader = torch.utils.data.DataLoader(
        ds,
        batch_size=2,
        num_workers=2,
        collate_fn=pseudo_collate,
        persistent_workers=True,
        multiprocessing_context=context)
    for round_idx in (0, 1):
        if round_idx:
            commit(root, ds, round_idx)
        seen = []
        for batch in loader:
            assert len(batch['inputs']) == 2
            for inputs, sample in zip(batch['inputs'], batch['data_samples']):
                assert inputs.shape == (3, 30, 50)
                assert sample.prior_round == round_idx
                seen.append(sample.prior_index)
                stored = priors_of_round(round_idx)[0][sample.prior_index]
                np.testing.assert_allclose(
                    bboxes_of(sample),
                    expected_boxes(stored, sample),
                    rtol=1e-5)
        assert seen == [0, 1, 2, 3]

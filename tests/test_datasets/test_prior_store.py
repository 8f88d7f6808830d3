# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""PriorStore: round trip, versions, crash safety, dataloader workers."""
import glob
import json
import os
import os.path as osp
import pickle
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from mmdet_joindet.datasets import (PriorReader, PriorRound, PriorStore,
                                    prior_round)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def random_priors(num_images, seed=0, max_k=5):
    """Per-image boxes [k, 4] xyxy (some k = 0) and scores [k], float32."""
    rng = np.random.default_rng(seed)
    boxes, scores = [], []
    for i in range(num_images):
        k = 0 if i % 4 == 1 else int(rng.integers(0, max_k + 1))
        xy = rng.uniform(0, 500, (k, 2))
        wh = rng.uniform(0, 200, (k, 2))
        boxes.append(np.concatenate([xy, xy + wh], 1).astype(np.float32))
        scores.append(rng.uniform(0, 1, k).astype(np.float32))
    return boxes, scores


def round_priors(round_idx, num_images=8):
    """Priors that tell their round: image i has i % 3 boxes, all equal to
    (i, round, i + 1, round + 1), scores = round."""
    boxes = [
        np.tile(np.float32([i, round_idx, i + 1, round_idx + 1]), (i % 3, 1))
        for i in range(num_images)
    ]
    scores = [np.full(i % 3, round_idx, np.float32) for i in range(num_images)]
    return boxes, scores


def assert_round_equal(prior_round, boxes, scores):
    assert len(prior_round) == len(boxes)
    for i, (b, s) in enumerate(zip(boxes, scores)):
        got_b, got_s = prior_round.get(i)
        assert got_b.dtype == np.float32 and got_b.shape == (len(b), 4)
        assert got_s.dtype == np.float32 and got_s.shape == (len(b), )
        np.testing.assert_array_equal(got_b, np.asarray(b, np.float32))
        np.testing.assert_array_equal(got_s, np.asarray(s, np.float32))


def hidden_entries(root):
    return sorted(n for n in os.listdir(root) if n.startswith('.'))


@pytest.mark.parametrize('case', ['many', 'one', 'one_empty', 'none'])
def test_round_trip(tmp_path, case):
    boxes, scores = dict(
        many=random_priors(23),
        one=random_priors(1, seed=3),
        one_empty=([np.zeros((0, 4), np.float32)], [np.zeros(0)]),
        none=([], []))[case]
    if case == 'many':  # torch and float64 inputs are converted
        boxes[0] = torch.from_numpy(boxes[0]).double()
        scores[2] = torch.from_numpy(scores[2])
        boxes[1] = np.zeros(0)  # an image without priors, any empty shape
    store = PriorStore(tmp_path / 'priors')
    path = store.write_round(
        0, boxes, scores, fingerprint='coco-train', info=dict(epoch=0))
    assert path == osp.join(store.root, 'round_0000')
    assert store.current_round() is None  # written, not committed
    store.commit(0)
    assert store.current_round() == 0 and store.rounds() == [0]

    prior_round = store.load()
    assert isinstance(prior_round, PriorRound)
    boxes = [np.asarray(b, np.float32).reshape(-1, 4) for b in boxes]
    assert_round_equal(prior_round, boxes, scores)
    total = sum(len(b) for b in boxes)
    assert (prior_round.round, prior_round.num_images, prior_round.num_boxes,
            prior_round.fingerprint) == (0, len(boxes), total, 'coco-train')
    assert prior_round.info == dict(epoch=0)
    with open(osp.join(path, 'meta.json')) as f:
        meta = json.load(f)
    assert meta['round'] == 0 and meta['num_images'] == len(boxes)
    assert meta['num_boxes'] == total and meta['created']
    assert meta['fingerprint'] == 'coco-train'
    assert meta['info'] == dict(epoch=0)
    # the documented files and dtypes
    assert np.load(osp.join(path, 'offsets.npy')).dtype == np.int64
    assert np.load(osp.join(path, 'boxes.npy')).shape == (total, 4)
    assert np.load(osp.join(path, 'scores.npy')).dtype == np.float32

    got_boxes, got_scores = prior_round.to_lists()
    assert len(got_boxes) == len(got_scores) == len(boxes)
    for b, s, got_b, got_s in zip(boxes, scores, got_boxes, got_scores):
        np.testing.assert_array_equal(got_b, b)
        np.testing.assert_array_equal(got_s, np.asarray(s, np.float32))
    # copies: the caller may modify them
    if total:
        i = next(i for i, b in enumerate(boxes) if len(b))
        prior_round.get(i)[0][:] = -1
        np.testing.assert_array_equal(prior_round.get(i)[0], boxes[i])
    with pytest.raises(IndexError, match='out of range'):
        prior_round.get(len(boxes))

    # the same round from already flattened arrays
    offsets = np.cumsum([0] + [len(b) for b in boxes])
    store.write_round_arrays(
        1,
        torch.from_numpy(offsets),
        np.concatenate(boxes) if boxes else np.zeros((0, 4)),
        np.concatenate(scores) if scores else np.zeros(0),
        fingerprint='coco-train')
    assert_round_equal(store.load(1), boxes, scores)


def test_versions_commit_rewind(tmp_path):
    store = PriorStore(str(tmp_path))
    assert store.rounds() == [] and store.current_round() is None
    for r in range(3):
        store.write_round(r, *round_priors(r), fingerprint='fp')
    assert store.rounds() == [0, 1, 2] and store.current_round() is None
    with pytest.raises(FileExistsError, match='overwrite=True'):
        store.write_round(1, *round_priors(9), fingerprint='fp')
    with pytest.raises(FileNotFoundError, match='round 7'):
        store.commit(7)

    store.commit(0)
    assert_round_equal(store.load(), *round_priors(0))
    assert_round_equal(store.load(1), *round_priors(1))
    store.commit(2)
    assert store.current_round() == 2
    state = store.state_dict()
    assert state == dict(
        root=store.root, current_round=2, rounds=[0, 1, 2], fingerprint='fp')

    # the committed round is immutable, the others may be replaced
    with pytest.raises(ValueError, match='committed round'):
        store.write_round(
            2, *round_priors(9), fingerprint='fp', overwrite=True)
    store.write_round(1, *round_priors(5), fingerprint='fp', overwrite=True)
    assert_round_equal(store.load(1), *round_priors(5))
    store.write_round(1, *round_priors(1), fingerprint='fp', overwrite=True)
    assert hidden_entries(store.root) == []

    # rewind keeps later rounds unless asked to prune them
    store.rewind(1)
    assert store.current_round() == 1 and store.rounds() == [0, 1, 2]
    assert_round_equal(store.load(), *round_priors(1))
    with pytest.raises(ValueError, match='use commit'):
        store.rewind(2)

    # resume: a checkpoint's state re-points CURRENT, forwards or back
    store.load_state_dict(state)
    assert store.current_round() == 2
    store.rewind(0)
    store.load_state_dict(dict(state, current_round=1))
    assert store.current_round() == 1 and store.rounds() == [0, 1, 2]
    with pytest.raises(ValueError, match='another image list'):
        store.load_state_dict(dict(state, fingerprint='other'))
    with pytest.raises(FileNotFoundError, match='round 4'):
        store.load_state_dict(dict(state, current_round=4))
    assert store.current_round() == 1
    fresh = PriorStore(tmp_path)  # the store as another process sees it
    fresh.load_state_dict(dict(current_round=None))
    assert fresh.current_round() == 1

    store.rewind(0, prune_after=True)
    assert store.current_round() == 0 and store.rounds() == [0]
    assert hidden_entries(store.root) == []


def test_load_errors(tmp_path):
    root = str(tmp_path / 'priors')
    store = PriorStore(root)
    with pytest.raises(FileNotFoundError, match=r'R0 first') as e:
        store.load()
    assert root in str(e.value)
    with pytest.raises(FileNotFoundError, match='R0 first'):
        PriorReader(root).get(0)

    path = store.write_round(0, *round_priors(0), fingerprint='fp')
    store.commit(0)
    with pytest.raises(ValueError, match='another image list'):
        store.load(expected_fingerprint='other')
    with pytest.raises(ValueError, match='another image list'):
        PriorReader(root, expected_fingerprint='other').get(0)
    store.load(expected_fingerprint='fp')

    def replace_file(file, value):
        # a new inode: never truncate a file that a map may still hold
        with open(file + '.new', 'wb') as f:
            if isinstance(value, np.ndarray):
                np.save(f, value)
            else:
                f.write(value)
        os.replace(file + '.new', file)

    def corrupt(name, value):
        file = osp.join(path, name)
        with open(file, 'rb') as f:
            backup = f.read()
        replace_file(file, value)
        try:
            with pytest.raises(ValueError) as e:
                store.load()
            assert file in str(e.value)
        finally:
            replace_file(file, backup)

    corrupt('boxes.npy', np.zeros((8, 3), np.float32))
    corrupt('boxes.npy', np.zeros((8, 4), np.float64))
    corrupt('scores.npy', np.zeros(3, np.float32))
    corrupt('offsets.npy', np.arange(9))  # ends at 8, not 8 boxes
    corrupt('offsets.npy', np.int64([0, 2, 1, 3, 4, 5, 6, 7, 7]))
    corrupt('offsets.npy', np.zeros(9, np.float32))
    corrupt('meta.json', b'{"round": 0')
    corrupt('meta.json', json.dumps(dict(round=1)).encode())
    with open(osp.join(path, 'meta.json')) as f:
        meta = json.load(f)
    corrupt('meta.json', json.dumps(dict(meta, round=3)).encode())
    corrupt('meta.json', json.dumps(dict(meta, num_images=5)).encode())
    assert_round_equal(store.load(), *round_priors(0))

    with open(osp.join(root, 'CURRENT'), 'w') as f:
        f.write('garbage')
    with pytest.raises(ValueError, match='CURRENT'):
        store.load()


@pytest.mark.parametrize('chunk', [1 << 20, 3])
def test_write_validation(tmp_path, monkeypatch, chunk):
    # large arrays are checked in chunks of rows: errors still name the image
    monkeypatch.setattr(prior_round, '_CHUNK', chunk)
    store = PriorStore(tmp_path)
    box = np.float32([[0, 0, 10, 10], [5, 5, 6, 8]])
    score = np.float32([0.9, 0.5])

    def bad(match, boxes, scores, error=ValueError, **kwargs):
        with pytest.raises(error, match=match):
            store.write_round(0, boxes, scores, fingerprint='fp', **kwargs)

    bad('one entry per image', [box, box], [score])
    bad(r'image 1 must be \[k, 4\]', [box, box[:, :3]], [score, score])
    bad(r'image 1 must be \[k, 4\]', [box, box[None]], [score, score])
    bad('scores of image 1', [box, box], [score, score[:1]])
    bad('scores of image 0', [box], [score[:, None]])
    bad('image 1 hold NaN', [box, box * np.float32([1, np.nan, 1, 1])],
        [score, score])
    bad('image 0 hold NaN or inf', [box], [score * np.inf])
    bad('image 0 hold NaN or inf', [np.float64([[0, 0, 1e39, 1]])], [[1.0]])
    bad('image 2 has a negative size', [box, box, box[:, [2, 1, 0, 3]]],
        [score] * 3)
    bad('negative size', [box[:, [0, 3, 2, 1]]], [score])
    with pytest.raises(TypeError, match='fingerprint must be a str'):
        store.write_round(0, [box], [score], fingerprint=3)
    with pytest.raises(TypeError, match='JSON'):
        store.write_round(0, [box], [score], 'fp', info=dict(a=object()))
    with pytest.raises(ValueError, match='round_idx'):
        store.write_round(-1, [box], [score], 'fp')

    def bad_arrays(match, offsets, boxes, scores):
        with pytest.raises(ValueError, match=match):
            store.write_round_arrays(0, offsets, boxes, scores, 'fp')

    boxes = np.concatenate([box, box])
    scores = np.concatenate([score, score])
    bad_arrays('offsets must start at 0', [1, 2, 4], boxes, scores)
    bad_arrays('end at num_boxes = 4', [0, 2, 3], boxes, scores)
    bad_arrays(r'non-decreasing, offsets\[0\] = 0 > offsets\[1\] = -1',
               [0, -1, 4], boxes, scores)
    bad_arrays('offsets must hold integers', np.float32([0, 2, 4]), boxes,
               scores)
    bad_arrays(r'boxes must be float32 \[num_boxes, 4\]', [0, 2, 4],
               boxes[:, :2], scores)
    bad_arrays('scores must be float32', [0, 2, 4], boxes, scores[:3])
    bad_arrays('negative size', [0, 2, 4], boxes[:, [2, 1, 0, 3]], scores)
    # nothing was written by the failed calls
    assert os.listdir(tmp_path) == []


CHILD = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {repo!r})
    import numpy as np
    from mmdet_joindet.datasets import prior_store

    real_fsync = os.fsync

    def slow_fsync(fd):  # the first file is written; stall the rest
        real_fsync(fd)
        time.sleep(120)

    prior_store.os.fsync = slow_fsync
    num_images = 300_000
    offsets = np.arange(num_images + 1) * 4
    boxes = np.tile(np.float32([0, 0, 9, 9]), (num_images * 4, 1))
    scores = np.ones(num_images * 4, np.float32)
    prior_store.PriorStore({root!r}).write_round_arrays(
        1, offsets, boxes, scores, 'fp')
    print('the write finished: it should have been killed', flush=True)
""")


def test_kill_mid_write(tmp_path):
    root = str(tmp_path)
    store = PriorStore(root)
    store.write_round(0, *round_priors(0), fingerprint='fp')
    store.commit(0)
    child = subprocess.Popen(
        [sys.executable, '-c',
         CHILD.format(repo=REPO, root=root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not glob.glob(osp.join(root, '.round_0001.tmp-*', '*.npy')):
            assert child.poll() is None, child.stdout.read().decode()
            assert time.monotonic() < deadline, 'the child never wrote'
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    tmp, = glob.glob(osp.join(root, '.round_0001.tmp-*'))
    assert not osp.exists(osp.join(tmp, 'meta.json'))  # killed mid-write

    # the committed round is intact; the leftover is invisible
    assert store.current_round() == 0 and store.rounds() == [0]
    assert_round_equal(store.load(), *round_priors(0))
    assert PriorReader(root).get(2)[0].tolist() == [[2, 0, 3, 1]] * 2
    with pytest.raises(FileNotFoundError, match='round 1'):
        store.load(1)

    # the round can be written again; cleanup removes only the leftovers
    live = osp.join(root, f'.round_0002.tmp-{os.getpid()}-0a1b')
    os.mkdir(live)
    assert store.cleanup_stale() == [tmp]
    assert osp.isdir(live)  # a live process's write is kept
    os.rmdir(live)
    store.write_round(1, *round_priors(1), fingerprint='fp')
    store.commit(1)
    assert_round_equal(store.load(), *round_priors(1))
    assert store.rounds() == [0, 1] and hidden_entries(root) == []


def test_current_only_replaced(tmp_path, monkeypatch):
    store = PriorStore(tmp_path)
    for r in range(2):
        store.write_round(r, *round_priors(r), fingerprint='fp')
    store.commit(0)
    current = osp.join(store.root, 'CURRENT')
    real_replace = os.replace
    calls = []

    def record(src, dst):
        calls.append((src, dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, 'replace', record)
    store.commit(1)
    src, dst = calls[-1]
    assert dst == current and osp.dirname(src) == store.root
    assert osp.basename(src).startswith('.CURRENT.tmp-')
    assert store.current_round() == 1

    def fail(src, dst):  # e.g. killed just before the rename
        raise OSError('no rename today')

    monkeypatch.setattr(os, 'replace', fail)
    for step in (lambda: store.commit(0), lambda: store.rewind(0)):
        with pytest.raises(OSError, match='no rename'):
            step()
        with open(current) as f:
            assert f.read() == '1\n'
        assert hidden_entries(store.root) == []
    assert_round_equal(store.load(), *round_priors(1))


class ReaderDataset(Dataset):
    """Returns each image's priors, the round served and the worker pid."""

    def __init__(self, reader, num_images):
        self.reader = reader
        self.num_images = num_images

    def __len__(self):
        return self.num_images

    def __getitem__(self, i):
        boxes, scores = self.reader.get(i)
        return i, boxes, scores, self.reader.round, os.getpid()


def test_persistent_workers_switch_round(tmp_path):
    num_images = 12
    store = PriorStore(tmp_path)
    for r in range(2):
        store.write_round(r, *round_priors(r, num_images), fingerprint='fp')
    store.commit(0)
    reader = PriorReader(tmp_path, expected_fingerprint='fp')
    assert reader.round is None
    reader.get(0)  # workers inherit an opened round 0
    assert reader.round == 0 and len(reader) == num_images
    loader = DataLoader(
        ReaderDataset(reader, num_images),
        batch_size=None,
        num_workers=2,
        persistent_workers=True)

    def epoch(round_idx):
        boxes, scores = round_priors(round_idx, num_images)
        pids = set()
        for i, got_boxes, got_scores, served, pid in loader:
            assert served == round_idx
            np.testing.assert_array_equal(got_boxes.numpy(), boxes[i])
            np.testing.assert_array_equal(got_scores.numpy(), scores[i])
            pids.add(pid)
        return pids

    pids = epoch(0)
    assert len(pids) == 2 and os.getpid() not in pids
    store.commit(1)
    assert epoch(1) == pids  # the same workers, now on round 1
    store.rewind(0)
    assert epoch(0) == pids


def test_reader_pickles_and_follows_quick_commits(tmp_path):
    store = PriorStore(tmp_path)
    for r in range(3):
        store.write_round(r, *round_priors(r), fingerprint='fp')
    store.commit(0)
    reader = PriorReader(tmp_path)
    assert reader.get(4)[1].tolist() == [0]
    # commits within one timestamp tick are still seen
    for r in (1, 2, 0, 2):
        store.commit(r)
        assert reader.get(4)[1].tolist() == [r] and reader.round == r

    blob = pickle.dumps(reader)
    assert len(blob) < 500  # the root and settings, no arrays
    copy = pickle.loads(blob)
    assert copy.root == reader.root and copy.round is None
    store.commit(1)
    assert copy.get(5)[0].tolist() == [[5, 1, 6, 2]] * 2
    assert copy.round == 1


def test_many_images_smoke(tmp_path):
    num_images = 200_000
    rng = np.random.default_rng(0)
    counts = rng.integers(5, 16, num_images)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    xy = rng.uniform(0, 1000, (offsets[-1], 2)).astype(np.float32)
    flat_boxes = np.concatenate([xy, xy + 50], axis=1)
    flat_scores = rng.uniform(0, 1, offsets[-1]).astype(np.float32)
    boxes = np.split(flat_boxes, offsets[1:-1])
    scores = np.split(flat_scores, offsets[1:-1])

    store = PriorStore(tmp_path)
    start = time.perf_counter()
    store.write_round(0, boxes, scores, fingerprint='big')
    store.commit(0)
    written = time.perf_counter()
    prior_round = store.load()
    loaded = time.perf_counter()
    print(f'\n{num_images} images, {offsets[-1]} boxes: write + commit '
          f'{written - start:.2f} s, load {loaded - written:.2f} s')
    assert isinstance(prior_round.boxes, np.memmap)
    assert prior_round.num_boxes == offsets[-1]
    reader = PriorReader(tmp_path)
    for i in rng.integers(0, num_images, 50).tolist() + [0, num_images - 1]:
        np.testing.assert_array_equal(prior_round.get(i)[0], boxes[i])
        np.testing.assert_array_equal(reader.get(i)[1], scores[i])

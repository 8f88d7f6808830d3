# Copyright (c) mmdet_joindet contributors. All rights reserved.
import os.path as osp

import pytest
from mmdet.registry import DATASETS

import mmdet_joindet.datasets as datasets_pkg
from mmdet_joindet.datasets import ImageNetTreeDataset
from mmdet_joindet.datasets.imagenet_tree import read_class_list

WNIDS = ('n01440764', 'n01443537', 'n01484850')


@pytest.fixture
def tree(tmp_path, image_writer):
    """``train/<wnid>/<wnid>_<k>.JPEG``, 2 images per class, and a stray
    file in the split folder."""
    for c, wnid in enumerate(WNIDS):
        for k in range(2):
            image_writer(
                str(tmp_path / 'train' / wnid / f'{wnid}_{k}.JPEG'),
                size=(16 + c, 24 + k))
    image_writer(str(tmp_path / 'train' / 'stray.JPEG'))
    (tmp_path / 'train' / WNIDS[0] / 'readme.txt').write_text('x')
    return tmp_path


def img_ids(ds):
    return [ds.get_data_info(i)['img_id'] for i in range(len(ds))]


def test_all_classes(tree):
    ds = ImageNetTreeDataset(data_root=str(tree))
    assert img_ids(ds) == [f'{w}/{w}_{k}.JPEG' for w in WNIDS for k in (0, 1)]
    assert ds.get_data_info(0)['img_path'] == osp.join(
        str(tree), 'train', WNIDS[0], f'{WNIDS[0]}_0.JPEG')


def test_class_list_and_file(tree):
    ds = DATASETS.build(
        dict(
            type='ImageNetTreeDataset',
            data_root=str(tree),
            classes=[WNIDS[2], WNIDS[0], WNIDS[2]]))
    assert img_ids(ds) == [
        f'{w}/{w}_{k}.JPEG' for w in (WNIDS[0], WNIDS[2]) for k in (0, 1)
    ]
    txt = tree / 'classes.txt'
    txt.write_text(f'# my subset\n{WNIDS[1]} goldfish, Carassius auratus\n'
                   f'\n  {WNIDS[2]}  # comment\n')
    ds = ImageNetTreeDataset(data_root=str(tree), classes=str(txt))
    assert ds.synsets == [WNIDS[1], WNIDS[2]]
    assert len(ds) == 4


def test_imagenet100_list_is_shipped(tree):
    names = read_class_list('imagenet100')
    shipped = osp.join(osp.dirname(datasets_pkg.__file__), 'imagenet100.txt')
    with open(shipped) as f:
        assert names == f.read().split()
    assert len(names) == len(set(names)) == 100
    assert all(n.startswith('n') and len(n) == 9 for n in names)
    # the tree has 3 classes, none of them of ImageNet-100
    with pytest.raises(FileNotFoundError) as e:
        ImageNetTreeDataset(data_root=str(tree), classes='imagenet100')
    msg = str(e.value)
    assert '100 of the 100 listed class folders are missing' in msg
    assert osp.join(str(tree), 'train') in msg
    assert ', '.join(names[:5]) + ', ...' in msg


def test_imagenet100_selects_its_folders(tmp_path, image_writer):
    names = read_class_list('imagenet100')
    for wnid in names:
        (tmp_path / 'train' / wnid).mkdir(parents=True)
    for wnid in names[:2]:
        image_writer(str(tmp_path / 'train' / wnid / 'a.JPEG'), size=(8, 8))
    image_writer(str(tmp_path / 'train' / 'n00000000' / 'a.JPEG'))
    ds = ImageNetTreeDataset(data_root=str(tmp_path), classes='imagenet100')
    assert img_ids(ds) == sorted(f'{w}/a.JPEG' for w in names[:2])


def test_errors(tree, tmp_path):
    with pytest.raises(
            FileNotFoundError,
            match='1 of the 2 listed class '
            'folders are missing.*n99999999'):
        ImageNetTreeDataset(
            data_root=str(tree), classes=[WNIDS[0], 'n99999999'])
    with pytest.raises(FileNotFoundError, match='neither a shipped'):
        ImageNetTreeDataset(data_root=str(tree), classes='imagenet7')
    (tree / 'val' / 'n01440764').mkdir(parents=True)
    with pytest.raises(
            FileNotFoundError,
            match='no image found in 1 '
            r"folders of .*val.*n01440764.*\.jpeg"):
        ImageNetTreeDataset(data_root=str(tree), data_prefix=dict(img='val'))
    (tree / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='has no class folder'):
        ImageNetTreeDataset(data_root=str(tree), data_prefix=dict(img='empty'))

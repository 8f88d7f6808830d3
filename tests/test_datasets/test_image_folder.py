# Copyright (c) mmdet_joindet contributors. All rights reserved.
import os
import pickle

import pytest
from mmdet.registry import DATASETS

from mmdet_joindet.datasets import ImageFolderDataset


def make_tree(root, write):
    """Nested folders, mixed extensions and cases, and non-images."""
    rels = ['b/z.png', 'a.jpg', 'b/c/d.JPEG', 'b/c/e.Png', 'a/x.bmp']
    for i, rel in enumerate(rels):
        write(str(root / 'imgs' / rel), size=(20 + i, 30))
    (root / 'imgs' / 'notes.txt').write_text('not an image')
    write(str(root / 'imgs' / '.hidden.jpg'))
    write(str(root / 'imgs' / '.cache' / 'y.jpg'))
    return sorted(rels)


def test_lists_nested_images_sorted(tmp_path, image_writer):
    rels = make_tree(tmp_path, image_writer)
    ds = ImageFolderDataset(
        data_root=str(tmp_path), data_prefix=dict(img='imgs'))
    assert len(ds) == 5
    infos = [ds.get_data_info(i) for i in range(len(ds))]
    assert [info['img_id'] for info in infos] == rels
    assert [info['img_path'] for info in infos
            ] == [os.path.join(str(tmp_path), 'imgs', rel) for rel in rels]
    assert all(os.path.isfile(info['img_path']) for info in infos)
    assert ds.metainfo['classes'] == ('object', )
    # serialised as mmengine does; the same list after pickling
    assert ds.serialize_data and ds.data_list == []
    copy = pickle.loads(pickle.dumps(ds))
    assert copy.get_data_info(4)['img_id'] == rels[4]


def test_extensions_indices_and_registry(tmp_path, image_writer):
    make_tree(tmp_path, image_writer)
    ds = DATASETS.build(
        dict(
            type='ImageFolderDataset',
            data_root=str(tmp_path),
            data_prefix=dict(img='imgs'),
            extensions=('png', '.jpeg'),
            indices=2))
    assert isinstance(ds, ImageFolderDataset)
    assert [ds.get_data_info(i)['img_id']
            for i in range(len(ds))] == ['b/c/d.JPEG', 'b/c/e.Png']


def test_symlinked_folder_followed_once(tmp_path, image_writer):
    image_writer(str(tmp_path / 'real' / 'a.png'))
    (tmp_path / 'imgs').mkdir()
    os.symlink(tmp_path / 'real', tmp_path / 'imgs' / 'link')
    os.symlink(tmp_path / 'imgs', tmp_path / 'imgs' / 'link' / 'loop')
    ds = ImageFolderDataset(data_prefix=dict(img=str(tmp_path / 'imgs')))
    assert [ds.get_data_info(i)['img_id'] for i in range(len(ds))] == \
        ['link/a.png']


def test_no_image_is_a_clear_error(tmp_path):
    (tmp_path / 'empty' / 'sub').mkdir(parents=True)
    (tmp_path / 'empty' / 'sub' / 'a.txt').write_text('x')
    with pytest.raises(FileNotFoundError, match='no image found in') as e:
        ImageFolderDataset(data_prefix=dict(img=str(tmp_path / 'empty')))
    assert str(tmp_path / 'empty') in str(e.value)
    assert '.jpg' in str(e.value) and '.png' in str(e.value)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        ImageFolderDataset(data_prefix=dict(img=str(tmp_path / 'missing')))

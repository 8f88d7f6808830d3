# Copyright (c) mmdet_joindet contributors. All rights reserved.
import json
import os.path as osp

import pytest

from mmdet_joindet.datasets import UnlabeledCocoDataset
from mmdet_joindet.testing import make_shapes_coco


def test_images_sorted_by_id_annotations_ignored(tmp_path):
    coco = make_shapes_coco(str(tmp_path), num_images=4)
    # shuffle the image order and drop the labels: only 'images' is read
    images = coco['images'][::-1]
    (tmp_path / 'unlabeled.json').write_text(json.dumps(dict(images=images)))
    ds = UnlabeledCocoDataset(
        ann_file='unlabeled.json',
        data_root=str(tmp_path),
        data_prefix=dict(img='images/'))
    assert len(ds) == 4
    for i, image in enumerate(sorted(images, key=lambda x: x['id'])):
        info = ds.get_data_info(i)
        assert info['img_id'] == image['id']
        assert info['img_path'] == osp.join(
            str(tmp_path), 'images', image['file_name'])
        assert osp.isfile(info['img_path'])
        assert (info['height'], info['width']) == (image['height'],
                                                   image['width'])
    assert ds.metainfo['classes'] == ('object', )
    # the labelled json gives the same list
    labelled = UnlabeledCocoDataset(
        ann_file=str(tmp_path / 'annotations.json'),
        data_prefix=dict(img=str(tmp_path / 'images')))
    assert [labelled.get_data_info(i)['img_path'] for i in range(4)] == \
        [ds.get_data_info(i)['img_path'] for i in range(4)]


def test_sizes_optional(tmp_path):
    (tmp_path / 'a.json').write_text(
        json.dumps(dict(images=[dict(id=7, file_name='x.jpg')])))
    info = UnlabeledCocoDataset(str(tmp_path / 'a.json')).get_data_info(0)
    assert info['img_id'] == 7 and 'height' not in info


@pytest.mark.parametrize('content,state', [(dict(images=[]), 'empty'),
                                           (dict(annotations=[]), 'missing')])
def test_no_image_is_a_clear_error(tmp_path, content, state):
    path = tmp_path / 'a.json'
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=f'no image in .*a.json.*{state}'):
        UnlabeledCocoDataset(str(path))


def test_duplicate_ids(tmp_path):
    (tmp_path / 'a.json').write_text(
        json.dumps(
            dict(images=[
                dict(id=1, file_name='x.jpg'),
                dict(id=1, file_name='y.jpg')
            ])))
    with pytest.raises(ValueError, match='duplicate image ids'):
        UnlabeledCocoDataset(str(tmp_path / 'a.json'))

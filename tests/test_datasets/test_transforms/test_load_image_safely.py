# Copyright (c) mmdet_joindet contributors. All rights reserved.
import re
import warnings

import mmcv
import numpy as np
import pytest
from mmcv.transforms import LoadImageFromFile
from mmdet.registry import TRANSFORMS

from mmdet_joindet.datasets import ImageSkippedWarning, LoadImageSafely
from mmdet_joindet.datasets.transforms import incomplete_image_reason


def load(path, **kwargs):
    return LoadImageSafely(**kwargs)(dict(img_path=str(path)))


@pytest.fixture
def files(tmp_path, image_writer):
    """Good images and one broken file of each kind."""
    good_jpg = image_writer(str(tmp_path / 'good.jpg'), size=(40, 56))
    good_png = image_writer(str(tmp_path / 'good.png'), size=(40, 56))
    data = open(good_jpg, 'rb').read()
    rng = np.random.default_rng(0)
    broken = dict(
        random=rng.integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        half_jpeg=data[:len(data) // 2],
        half_png=open(good_png, 'rb').read()[:600],
        zero=b'')
    paths = {}
    for name, content in broken.items():
        paths[name] = tmp_path / f'{name}.jpg'
        paths[name].write_bytes(content)
    paths['missing'] = tmp_path / 'missing.jpg'
    paths['folder'] = tmp_path / 'folder.jpg'
    paths['folder'].mkdir()
    return good_jpg, good_png, paths


def test_good_images_load_like_mmcv(files):
    for path in files[:2]:
        for kwargs in (dict(), dict(to_float32=True),
                       dict(color_type='grayscale'),
                       dict(imdecode_backend='pillow')):
            ours = load(path, **kwargs)
            ref = LoadImageFromFile(**kwargs)(dict(img_path=str(path)))
            assert ours['img'].dtype == ref['img'].dtype
            np.testing.assert_array_equal(ours['img'], ref['img'])
            assert ours['img_shape'] == ours['ori_shape'] == (40, 56)


def test_broken_files_skipped_once_each(files):
    _, _, paths = files
    assert LoadImageSafely.skipped().isdisjoint(map(str, paths.values()))
    reasons = dict(
        random='cannot decode',
        half_jpeg='truncated JPEG',
        half_png='truncated PNG',
        zero='empty file',
        missing='cannot read the file .*FileNotFoundError',
        folder='cannot read the file .*IsADirectoryError')
    for name, path in paths.items():
        match = f'{re.escape(str(path))}: {reasons[name]}'
        with pytest.warns(ImageSkippedWarning, match=match) as record:
            assert load(path) is None
        assert len(record) == 1
        with warnings.catch_warnings():
            warnings.simplefilter('error')  # no second warning
            assert load(path) is None
            assert load(path, imdecode_backend='pillow') is None
    assert {str(p) for p in paths.values()} <= LoadImageSafely.skipped()
    assert all(map(LoadImageSafely.is_skipped, map(str, paths.values())))


def test_truncation_caught_where_the_decoder_misses_it(files, monkeypatch):
    """Why the EOI check exists: some decoders fill a cut JPEG with grey
    silently (OpenCV 4 builds; Pillow with LOAD_TRUNCATED_IMAGES, which
    some code bases set globally)."""
    from PIL import ImageFile
    monkeypatch.setattr(ImageFile, 'LOAD_TRUNCATED_IMAGES', True)
    _, _, paths = files
    data = paths['half_jpeg'].read_bytes()
    assert mmcv.imfrombytes(data, backend='pillow').shape == (40, 56, 3)
    with pytest.warns(ImageSkippedWarning, match='truncated JPEG'):
        assert load(paths['half_jpeg'], imdecode_backend='pillow') is None


def test_size_check(tmp_path, image_writer):
    path = image_writer(str(tmp_path / 'a.png'), size=(40, 56))
    assert load(path) is not None
    ok = LoadImageSafely()(dict(img_path=path, height=40, width=56))
    assert ok['img'].shape == (40, 56, 3)
    # a transposed size (EXIF orientation) is accepted
    assert LoadImageSafely()(dict(img_path=path, height=56,
                                  width=40)) is not None
    with pytest.warns(ImageSkippedWarning, match='decodes to 40x56 .* 41x56'):
        assert LoadImageSafely()(dict(img_path=path, height=41,
                                      width=56)) is None


def test_complete_jpeg_variants(tmp_path, image_writer):
    data = open(image_writer(str(tmp_path / 'a.jpg')), 'rb').read()
    assert incomplete_image_reason(data) is None
    # trailing bytes after EOI (padding, a motion photo's video) are fine
    for tail in (b'\x00' * 4000, b'ftypmp42' + bytes(range(256)) * 10):
        (tmp_path / 'b.jpg').write_bytes(data + tail)
        assert incomplete_image_reason(data + tail) is None
        assert load(tmp_path / 'b.jpg')['img'].shape == (48, 64, 3)
    # cut anywhere before EOI: truncated
    for cut in (3, 100, len(data) // 3, len(data) - 2, len(data) - 1):
        assert 'truncated JPEG' in incomplete_image_reason(data[:cut])
    # an EOI inside an APP segment (an EXIF thumbnail) does not count
    thumb = b'Exif\xff\xd9\x00\x00\x00\x00'
    app = b'\xff\xe1' + (len(thumb) + 2).to_bytes(2, 'big') + thumb
    with_thumb = data[:2] + app + data[2:]
    assert incomplete_image_reason(with_thumb) is None
    assert incomplete_image_reason(with_thumb[:len(with_thumb) // 2]) \
        is not None


def test_other_formats(tmp_path, image_writer):
    for ext in ('.png', '.bmp', '.webp'):
        data = open(image_writer(str(tmp_path / f'a{ext}')), 'rb').read()
        assert incomplete_image_reason(data) is None
        reason = incomplete_image_reason(data[:len(data) // 2])
        assert reason.lower().startswith(f'truncated {ext[1:]}'), reason


def test_registered():
    t = TRANSFORMS.build(dict(type='LoadImageSafely', to_float32=True))
    assert isinstance(t, LoadImageSafely) and t.to_float32
    assert 'LoadImageSafely(to_float32=True' in repr(t)

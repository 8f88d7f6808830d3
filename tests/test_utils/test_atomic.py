# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Atomic writes: the file appears whole or not at all, and an earlier
file survives a failed write (``save_atomic`` under the backbone export is
also tested through ``ExportBackboneHook``)."""
import os

import pytest
import torch

from mmdet_joindet.utils import save_atomic, write_atomic, write_bytes_atomic


def test_writes_bytes_with_the_mode_open_gives(tmp_path):
    dst = tmp_path / 'new' / 'data.bin'  # the folder is created
    write_bytes_atomic(str(dst), b'\x00payload\xff')
    assert dst.read_bytes() == b'\x00payload\xff'
    plain = tmp_path / 'plain.bin'
    plain.write_bytes(b'')
    assert dst.stat().st_mode == plain.stat().st_mode
    assert os.listdir(dst.parent) == ['data.bin']


def test_replaces_an_earlier_file(tmp_path):
    dst = tmp_path / 'state.pth'
    save_atomic({'a': torch.arange(3)}, str(dst))
    save_atomic({'a': torch.arange(5)}, str(dst))
    assert torch.equal(torch.load(dst)['a'], torch.arange(5))
    assert os.listdir(tmp_path) == ['state.pth']


@pytest.mark.parametrize('error', [OSError('disk full'), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_earlier_file(tmp_path, error):
    dst = tmp_path / 'a.json'
    write_bytes_atomic(str(dst), b'{"old": 1}')

    def half_then_fail(tmp):
        with open(tmp, 'wb') as f:
            f.write(b'{"ne')
        raise error

    with pytest.raises(type(error)):
        write_atomic(str(dst), half_then_fail)
    assert dst.read_bytes() == b'{"old": 1}'
    assert os.listdir(tmp_path) == ['a.json']


def test_a_failed_first_write_leaves_nothing(tmp_path):

    def fail(tmp):
        raise ValueError('cannot encode')

    with pytest.raises(ValueError, match='cannot encode'):
        write_atomic(str(tmp_path / 'x.png'), fail)
    assert os.listdir(tmp_path) == []


def test_the_file_and_its_folder_are_fsynced(tmp_path, monkeypatch):
    from mmdet_joindet.utils import atomic
    calls = []
    real_file, real_dir = atomic.fsync_file, atomic.fsync_dir

    def file(path):
        calls.append(('file', path, os.path.exists(tmp_path / 'x.json')))
        real_file(path)

    def folder(path):
        calls.append(('dir', path, os.path.exists(tmp_path / 'x.json')))
        real_dir(path)

    monkeypatch.setattr(atomic, 'fsync_file', file)
    monkeypatch.setattr(atomic, 'fsync_dir', folder)
    tmp = str(tmp_path / '.x.json.tmp-mine')
    write_bytes_atomic(str(tmp_path / 'x.json'), b'{}')
    atomic.write_atomic(
        str(tmp_path / 'x.json'),
        lambda p: atomic.write_new_file(p, lambda f: f.write(b'[]')),
        tmp=tmp)
    # the data before the rename, the folder's entry after it
    assert [(kind, exists) for kind, _, exists in calls] == [('file', False),
                                                             ('dir', True),
                                                             ('file', True),
                                                             ('dir', True)]
    assert calls[2][1] == tmp and calls[3][1] == str(tmp_path)
    assert (tmp_path / 'x.json').read_bytes() == b'[]'
    assert os.listdir(tmp_path) == ['x.json']
    with pytest.raises(FileExistsError):  # write_new_file never overwrites
        atomic.write_new_file(str(tmp_path / 'x.json'), lambda f: None)

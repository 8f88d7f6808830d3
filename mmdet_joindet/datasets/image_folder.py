# Copyright (c) mmdet_joindet contributors. All rights reserved.
import os
import os.path as osp
from typing import List, Sequence, Union

from mmdet.registry import DATASETS
from mmengine.dataset import BaseDataset

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
# Every unlabeled dataset has one class: "object" (JoinDet's priors are
# class-agnostic; the detector's f_cls is foreground vs background).
OBJECT_METAINFO = dict(classes=('object', ), palette=[(220, 20, 60)])


def list_images(root: str, folder: str,
                extensions: Sequence[str]) -> List[str]:
    """Image files under ``root/folder``, recursively, relative to ``root``.

    Symlinked folders are followed (each real folder once); hidden files
    and folders (name starting with ``.``, e.g. macOS ``._x.jpg``) are
    skipped; extensions match case-insensitively.

    Returns:
        list[str]: ``/``-separated paths relative to ``root``, unsorted.
    """
    found, seen = [], set()
    top = osp.join(root, folder) if folder else root
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True):
        real = osp.realpath(dirpath)
        if real in seen:  # a symlink cycle or a second link to a folder
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = [d for d in dirnames if not d.startswith('.')]
        rel_dir = osp.relpath(dirpath, root).replace(os.sep, '/')
        rel_dir = '' if rel_dir == '.' else rel_dir + '/'
        found.extend(rel_dir + name for name in filenames
                     if not name.startswith('.')
                     and name.lower().endswith(tuple(extensions)))
    return found


@DATASETS.register_module()
class ImageFolderDataset(BaseDataset):
    """Every image under a folder, recursively, without labels.

    For JoinDet's self-supervised pretraining (wrap it in
    :class:`SelfSupervisedDataset`). ``data_list`` holds, per image,
    ``dict(img_path=<prefix>/<rel>, img_id=<rel>)`` where ``<rel>`` is the
    ``/``-separated path relative to ``data_prefix['img']``; images are
    sorted by ``<rel>`` (deterministic: the same index means the same image
    on every rank and in every run). Image sizes are not read (that would
    open every file): samplers that need ``height``/``width`` (mmdet's
    ``AspectRatioBatchSampler``) do not work with this dataset.

    Args:
        data_root (str): Root joined with ``data_prefix['img']``.
        data_prefix (dict): ``dict(img=<folder>)``. Defaults to
            ``dict(img='')`` (``data_root`` itself).
        extensions (Sequence[str]): File extensions to take,
            case-insensitive. Defaults to :data:`IMG_EXTENSIONS`.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments
            (``indices``, ``serialize_data``, ``lazy_init``, ...; no
            ``ann_file``).

    Raises:
        FileNotFoundError: The folder does not exist or holds no image.
    """

    METAINFO = OBJECT_METAINFO

    def __init__(self,
                 data_root: str = '',
                 data_prefix: dict = dict(img=''),
                 extensions: Union[str, Sequence[str]] = IMG_EXTENSIONS,
                 **kwargs) -> None:
        if 'ann_file' in kwargs:
            raise TypeError(f'{type(self).__name__} lists image files and '
                            'takes no ann_file')
        if 'img' not in data_prefix:
            raise ValueError(f"data_prefix must be dict(img=<folder>), got "
                             f'{data_prefix}')
        if isinstance(extensions, str):
            extensions = (extensions, )
        self.extensions = tuple(
            (e if e.startswith('.') else '.' + e).lower() for e in extensions)
        if not self.extensions:
            raise ValueError('extensions must not be empty')
        super().__init__(
            data_root=data_root, data_prefix=data_prefix, **kwargs)

    def _folders(self, root: str) -> List[str]:
        """Folders (relative to ``root``; ``''`` is ``root``) to search."""
        return ['']

    def load_data_list(self) -> List[dict]:
        """List the images; see the class docstring for the fields."""
        root = self.data_prefix['img'] or '.'
        name = type(self).__name__
        if not osp.isdir(root):
            raise FileNotFoundError(
                f'{name}: image folder {root!r} does not exist')
        folders = self._folders(root)
        rel_paths = []
        for folder in folders:
            rel_paths.extend(list_images(root, folder, self.extensions))
        if not rel_paths:
            where = repr(root)
            if folders != ['']:
                shown = ', '.join(folders[:3])
                if len(folders) > 3:
                    shown += ', ...'
                where = f'{len(folders)} folders of {root!r} ({shown})'
            raise FileNotFoundError(
                f'{name}: no image found in {where}: searched recursively '
                f'for files ending in {", ".join(self.extensions)} '
                '(case-insensitive)')
        rel_paths.sort()
        return [
            dict(img_path=osp.join(root, rel), img_id=rel) for rel in rel_paths
        ]

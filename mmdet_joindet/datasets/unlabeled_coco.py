# Copyright (c) mmdet_joindet contributors. All rights reserved.
import os.path as osp
from typing import List, Optional

from mmdet.registry import DATASETS
from mmengine.dataset import BaseDataset
from mmengine.fileio import load

from .image_folder import OBJECT_METAINFO


@DATASETS.register_module()
class UnlabeledCocoDataset(BaseDataset):
    """The images of a COCO-format json, without their labels.

    For JoinDet's pretraining on COCO (paper Sec. 3.1: train2017 without
    labels; wrap it in :class:`SelfSupervisedDataset`). Only the json's
    ``images`` list is read (``annotations`` and ``categories`` may be
    absent; if present they are ignored), sorted by image id. Each
    ``data_info`` is ``dict(img_path=<data_prefix['img']>/<file_name>,
    img_id=<id>, height, width)`` (the sizes when the json has them).

    Args:
        ann_file (str): The COCO-format json (relative to ``data_root``
            unless absolute).
        data_root (str): Root of ``ann_file`` and ``data_prefix``.
        data_prefix (dict): ``dict(img=<image folder>)``. Defaults to
            ``dict(img='')``.
        backend_args (dict, optional): mmengine file backend arguments for
            reading ``ann_file``. Defaults to None.
        **kwargs: Other :class:`mmengine.dataset.BaseDataset` arguments.

    Raises:
        ValueError: The json has no or an empty ``images`` list, or
            duplicate image ids.
    """

    METAINFO = OBJECT_METAINFO

    def __init__(self,
                 ann_file: str,
                 data_root: str = '',
                 data_prefix: dict = dict(img=''),
                 backend_args: Optional[dict] = None,
                 **kwargs) -> None:
        if 'img' not in data_prefix:
            raise ValueError(f"data_prefix must be dict(img=<folder>), got "
                             f'{data_prefix}')
        self.backend_args = backend_args
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read the json's ``images``; see the class docstring."""
        coco = load(
            self.ann_file, file_format='json', backend_args=self.backend_args)
        images = coco.get('images') if isinstance(coco, dict) else None
        if not images:
            state = 'empty' if isinstance(images, list) else 'missing'
            raise ValueError(
                f'{type(self).__name__}: no image in {self.ann_file!r}: its '
                f"'images' list (COCO format: id, file_name, height, width) "
                f'is {state}')
        images = sorted(images, key=lambda image: image['id'])
        ids = [image['id'] for image in images]
        if len(set(ids)) != len(ids):
            raise ValueError(f'{self.ann_file!r} has duplicate image ids')
        prefix = self.data_prefix['img']
        data_list = []
        for image in images:
            info = dict(
                img_path=osp.join(prefix, image['file_name']),
                img_id=image['id'])
            for key in ('height', 'width'):
                if key in image:
                    info[key] = image[key]
            data_list.append(info)
        return data_list

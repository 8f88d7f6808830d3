# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""The identifier of an ordered image list that a prior round carries."""
import hashlib
from typing import Iterable

__all__ = ['image_list_fingerprint']


def image_list_fingerprint(rel_paths: Iterable[str]) -> str:
    """SHA-1 (first 16 hex digits) of the paths, each followed by ``\\n``.

    Args:
        rel_paths (Iterable[str]): The images' paths relative to the
            dataset's image folder, in dataset order (prior store index
            order): a COCO json's ``file_name`` values sorted by image id
            for :class:`UnlabeledCocoDataset`, the sorted relative paths
            for :class:`ImageFolderDataset`.

    Returns:
        str: 16 hex digits; they change when an image is added, removed,
        renamed or moved in the order.
    """
    digest = hashlib.sha1()
    for path in rel_paths:
        digest.update(path.encode('utf-8') + b'\n')
    return digest.hexdigest()[:16]

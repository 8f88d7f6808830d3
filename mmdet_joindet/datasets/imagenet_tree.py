# Copyright (c) mmdet_joindet contributors. All rights reserved.
import os
import os.path as osp
from importlib import resources
from typing import List, Optional, Sequence, Union

from mmdet.registry import DATASETS

from .image_folder import ImageFolderDataset

# Named class lists shipped with the package (``datasets/<name>.txt``).
# imagenet100: the 100 ImageNet-1K synsets of CMC (Tian et al., 2020), also
# DETReg's and the JoinDet paper's (Sec. 3.1) ImageNet-100.
CLASS_LISTS = ('imagenet100', )


def read_class_list(
        classes: Union[None, str, Sequence[str]]) -> Optional[List[str]]:
    """Synset folder names from a list, a shipped name or a text file.

    A text file holds one name per line; only the first whitespace-separated
    token counts (so ``n01440764 tench, Tinca tinca`` lines work), ``#``
    starts a comment, blank lines are skipped. Duplicates are dropped.

    Args:
        classes (None | str | Sequence[str]): None (all folders), a name of
            :data:`CLASS_LISTS`, a path to a text file, or the names.

    Returns:
        list[str] | None: The names in their first-seen order, or None.
    """
    if classes is None:
        return None
    if isinstance(classes, str):
        if classes in CLASS_LISTS:
            text = resources.files(__package__).joinpath(
                f'{classes}.txt').read_text()
        elif osp.isfile(classes):
            with open(classes) as f:
                text = f.read()
        else:
            raise FileNotFoundError(
                f'classes={classes!r} is neither a shipped class list '
                f'{CLASS_LISTS} nor an existing text file')
        lines = (line.split('#')[0].split() for line in text.splitlines())
        names = [tokens[0] for tokens in lines if tokens]
    else:
        names = [str(name).strip() for name in classes]
    names = list(dict.fromkeys(name for name in names if name))
    if not names:
        raise ValueError(f'classes={classes!r} lists no class')
    return names


@DATASETS.register_module()
class ImageNetTreeDataset(ImageFolderDataset):
    """The images of an ImageNet-style tree ``<root>/<split>/<wnid>/*``.

    The paper pretrains on ImageNet-1K and on its 100-class subset
    ImageNet-100 (Sec. 3.1; ``classes='imagenet100'``). Labels are not
    used: ``data_list`` holds ``dict(img_path, img_id=<wnid>/<file>)``
    sorted by ``img_id``, as :class:`ImageFolderDataset`; only the class
    folders (one level below ``data_prefix['img']``) are searched, so
    files lying directly in the split folder are ignored.

    Args:
        data_root (str): The ImageNet root.
        data_prefix (dict): ``dict(img=<split>)``. Defaults to
            ``dict(img='train')``.
        classes (None | str | Sequence[str]): Synset folders to take:
            None for every (non-hidden) folder, a list of wnids, a path to
            a text file of wnids (see :func:`read_class_list`) or
            ``'imagenet100'`` (shipped list). Defaults to None.
        extensions (Sequence[str]): Defaults to JPEG and PNG.
        **kwargs: Other :class:`ImageFolderDataset` arguments.

    Raises:
        FileNotFoundError: A listed class folder is missing (the error names
            a few), the split has no class folder, or no image was found.
    """

    def __init__(self,
                 data_root: str = '',
                 data_prefix: dict = dict(img='train'),
                 classes: Union[None, str, Sequence[str]] = None,
                 extensions: Sequence[str] = ('.jpeg', '.jpg', '.png'),
                 **kwargs) -> None:
        self.synsets = read_class_list(classes)
        super().__init__(
            data_root=data_root,
            data_prefix=data_prefix,
            extensions=extensions,
            **kwargs)

    def _folders(self, root: str) -> List[str]:
        """The class folders: the listed ones, or all of ``root``'s."""
        name = type(self).__name__
        if self.synsets is None:
            with os.scandir(root) as entries:
                folders = sorted(e.name for e in entries
                                 if e.is_dir() and not e.name.startswith('.'))
            if not folders:
                raise FileNotFoundError(
                    f'{name}: {root!r} has no class folder '
                    '(expected <split>/<wnid>/<image>)')
            return folders
        missing = [s for s in self.synsets if not osp.isdir(osp.join(root, s))]
        if missing:
            shown = ', '.join(
                missing[:5]) + (', ...' if len(missing) > 5 else '')
            raise FileNotFoundError(
                f'{name}: {len(missing)} of the {len(self.synsets)} listed '
                f'class folders are missing under {root!r}: {shown}')
        return sorted(self.synsets)

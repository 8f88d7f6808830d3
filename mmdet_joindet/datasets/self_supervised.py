# Copyright (c) mmdet_joindet contributors. All rights reserved.
import copy
import logging
from operator import index as as_index
from typing import Any, Callable, Optional, Sequence, Set, Union

import numpy as np
from mmdet.registry import DATASETS, TRANSFORMS
from mmengine.dataset import BaseDataset, Compose, force_full_init
from mmengine.logging import print_log
from torch.utils.data import Dataset

from .fingerprint import image_list_fingerprint
from .image_folder import OBJECT_METAINFO
from .prior_reader import PriorReader
from .transforms import LoadImageSafely


def _compose(pipeline: Sequence[Union[dict, Callable]]) -> Compose:
    """A pipeline whose dict entries are built from mmdet's registry."""
    return Compose(
        [TRANSFORMS.build(t) if isinstance(t, dict) else t for t in pipeline])


class PriorInferenceView(Dataset):
    """An unlabeled dataset's images through a test-mode pipeline.

    Made by :meth:`SelfSupervisedDataset.test_dataset` for the inference
    pass of the prior update (paper Sec. 2, Steps 1-2): no priors, no
    refetch. Item ``i`` is ``pipeline(dataset.get_data_info(i))`` with
    ``prior_index = i`` in the results (and in the packed data sample's
    metainfo), so predictions map back to dataset indices; it is None when
    the pipeline returns None (an image :class:`LoadImageSafely` skipped):
    the collate function must drop those.

    Args:
        dataset (BaseDataset): The unlabeled dataset (not copied).
        pipeline (Sequence[dict | callable]): The test-mode pipeline.
    """

    def __init__(self, dataset: BaseDataset,
                 pipeline: Sequence[Union[dict, Callable]]) -> None:
        self.dataset = dataset
        self.pipeline = _compose(pipeline)

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(OBJECT_METAINFO)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int) -> Optional[Any]:
        idx = as_index(idx)
        if idx < 0:
            idx += len(self)
        info = self.dataset.get_data_info(idx)
        info['prior_index'] = idx
        results = self.pipeline(info)
        if isinstance(results, dict):
            sample = results.get('data_samples')
            if hasattr(sample, 'set_metainfo'):
                sample.set_metainfo(dict(prior_index=idx))
        return results


@DATASETS.register_module()
class SelfSupervisedDataset:
    """An unlabeled dataset whose targets are JoinDet's object priors.

    The training set of JoinDet's pretraining (paper Sec. 2.4): item
    ``idx`` is ``pipeline(info)`` with ``info =
    dataset.get_data_info(idx)`` plus ``prior_index=idx`` and
    ``prior_reader`` (a :class:`PriorReader` of the prior store), so that
    :class:`LoadPriors` in ``pipeline`` adds the image's priors of the
    committed round as ``gt_bboxes`` (``(x1, y1, x2, y2)``, original-image
    pixels; one class, "object"). The reader re-checks the committed round
    on every read, so every dataloader worker (persistent ones included)
    trains on a new round from the first item it loads after the commit.

    The inner dataset (:class:`UnlabeledCocoDataset`,
    :class:`ImageFolderDataset`, :class:`ImageNetTreeDataset` or any
    ``BaseDataset`` with ``img_path`` in its data_info) only lists images:
    **its own pipeline is not used** (leave it empty).

    A sample the pipeline drops (None: an image :class:`LoadImageSafely`
    skipped, or a random transform that gave up) is replaced by another
    random image, at most ``max_refetch`` times. Images that failed to load
    are remembered (per process) and not drawn again; when every image has
    failed, :meth:`__getitem__` raises instead of looping.

    The prior store is set with ``prior_root`` or, usually, by JoinDet's
    :class:`PriorUpdateHook` in ``before_run`` (:meth:`set_prior_root`),
    before dataloader workers exist. The reader refuses rounds written for
    another image list (:meth:`fingerprint`).

    Pickles cheaply for dataloader workers: the inner dataset keeps its
    data_list serialised in one numpy buffer (mmengine's
    ``serialize_data``) and the reader pickles as its root only.

    Args:
        dataset (dict | BaseDataset): The unlabeled dataset or its config.
        pipeline (Sequence[dict | callable]): The training pipeline; it
            loads the image, then :class:`LoadPriors` (before any geometric
            transform), then augments and packs.
        prior_root (str, optional): The prior store's folder. Defaults to
            None (set by the prior hook).
        max_refetch (int): Replacement draws per item at most. Defaults
            to 100.
        lazy_init (bool): Defer ``full_init`` of the inner dataset.
            Defaults to False.
    """

    METAINFO = OBJECT_METAINFO

    def __init__(self,
                 dataset: Union[dict, BaseDataset],
                 pipeline: Sequence[Union[dict, Callable]],
                 prior_root: Optional[str] = None,
                 max_refetch: int = 100,
                 lazy_init: bool = False) -> None:
        if isinstance(dataset, dict):
            dataset = DATASETS.build(dataset)
        if not isinstance(dataset, BaseDataset):
            raise TypeError('dataset must be a BaseDataset or its config, '
                            f'got {type(dataset).__name__}')
        self.dataset = dataset
        if len(getattr(dataset, 'pipeline', Compose([])).transforms):
            print_log(
                f'{type(self).__name__}: the pipeline of the inner '
                f'{type(dataset).__name__} is not used',
                logger='current',
                level=logging.WARNING)
        self.pipeline = _compose(pipeline)
        if max_refetch < 0:
            raise ValueError(f'max_refetch must be >= 0, got {max_refetch}')
        self.max_refetch = max_refetch
        self.prior_root: Optional[str] = None
        self.reader: Optional[PriorReader] = None
        self._unusable: Set[int] = set()  # indices that failed to load
        self._fingerprint: Optional[str] = None
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()
        if prior_root is not None:
            self.set_prior_root(prior_root)

    @property
    def metainfo(self) -> dict:
        """``dict(classes=('object', ), palette=...)``."""
        return copy.deepcopy(self.METAINFO)

    def full_init(self) -> None:
        """Fully initialise the inner dataset."""
        if self._fully_initialized:
            return
        self.dataset.full_init()
        self._fully_initialized = True

    @force_full_init
    def __len__(self) -> int:
        return len(self.dataset)

    @force_full_init
    def get_data_info(self, idx: int) -> dict:
        """The inner dataset's data_info of image ``idx``."""
        return self.dataset.get_data_info(idx)

    def set_prior_root(self, root: str) -> None:
        """Read priors from the store at ``root`` from now on.

        Call it before dataloader workers are created (they hold copies of
        the dataset): the prior hook does so in ``before_run``.
        """
        self.prior_root = root
        self.reader = PriorReader(
            root, expected_fingerprint=self.fingerprint())

    @force_full_init
    def fingerprint(self) -> str:
        """A short, stable hash of the ordered image list.

        :func:`.image_list_fingerprint` of the images' paths relative to
        the inner dataset's image prefix (``data_prefix['img']``) in
        dataset order: it changes when images are added, removed or
        reordered, not when the data folder moves. Computed once (it reads
        every data_info) and cached; the cache pickles with the dataset.
        """
        if self._fingerprint is None:
            prefix = getattr(self.dataset, 'data_prefix', {})
            prefix = prefix.get('img', prefix.get('img_path', '')) or ''

            def rel_paths():
                for i in range(len(self)):
                    path = self.get_data_info(i)['img_path']
                    if prefix and path.startswith(prefix):
                        path = path[len(prefix):].lstrip('/\\')
                    yield path

            self._fingerprint = image_list_fingerprint(rel_paths())
        return self._fingerprint

    def test_dataset(
            self, pipeline: Sequence[Union[dict,
                                           Callable]]) -> PriorInferenceView:
        """The images through a test-mode ``pipeline``, keeping indices.

        For the prior update's inference pass; see
        :class:`PriorInferenceView`. No priors are read.
        """
        self.full_init()
        return PriorInferenceView(self.dataset, pipeline)

    def prepare_data(self, idx: int) -> Any:
        """``pipeline(info)`` of image ``idx``, with the prior keys."""
        return self._prepare(self.get_data_info(idx), idx)

    def _prepare(self, info: dict, idx: int) -> Any:
        info['prior_index'] = idx
        info['prior_reader'] = self.reader
        return self.pipeline(info)

    def _rand_another(self) -> int:
        """A random index not known to fail loading."""
        n = len(self)
        if 2 * len(self._unusable) < n:
            while True:  # rejection: accepts with probability > 1/2
                idx = np.random.randint(n)
                if idx not in self._unusable:
                    return idx
        usable = np.setdiff1d(
            np.arange(n), np.fromiter(self._unusable, dtype=np.int64))
        return int(np.random.choice(usable))

    @force_full_init
    def __getitem__(self, idx: int) -> Any:
        """Image ``idx`` (or a replacement) through the pipeline.

        Raises:
            RuntimeError: No prior store was set; every image failed to
                load; or ``max_refetch`` replacements were dropped too.
        """
        if self.reader is None:
            raise RuntimeError(
                f'{type(self).__name__} has no prior store: add JoinDet\'s '
                'PriorUpdateHook to custom_hooks (it calls set_prior_root() '
                'in before_run) or set prior_root in the dataset config')
        n = len(self)
        idx = as_index(idx)
        if idx < 0:
            idx += n
        for _ in range(self.max_refetch + 1):
            if idx not in self._unusable:
                info = self.get_data_info(idx)
                path = info.get('img_path')
                data = self._prepare(info, idx)
                if data is not None:
                    return data
                if LoadImageSafely.is_skipped(path):
                    self._unusable.add(idx)
            if len(self._unusable) >= n:
                raise RuntimeError(
                    f'no usable image in {self._describe()}: all {n} files '
                    'failed to load (see the ImageSkippedWarning messages)')
            idx = self._rand_another()
        tries = self.max_refetch + 1
        raise RuntimeError(
            f'{type(self).__name__}: the pipeline dropped {tries} samples in '
            f'a row from {self._describe()} '
            f'({len(self._unusable)} of {n} files failed to load in this '
            'process); check the image files and the pipeline')

    def _describe(self) -> str:
        """The inner dataset's name and source, for error messages."""
        inner = self.dataset
        where = getattr(inner, 'ann_file', '') or getattr(
            inner, 'data_prefix', {}).get('img', '')
        return f'{type(inner).__name__}({where!r})'

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(dataset={self._describe()}, '
                f'num_images={len(self)}, prior_root={self.prior_root!r}, '
                f'round={getattr(self.reader, "round", None)})')

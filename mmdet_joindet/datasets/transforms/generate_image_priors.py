# Copyright (c) mmdet_joindet contributors. All rights reserved.
from typing import Optional

from mmcv.transforms import BaseTransform
from mmdet.registry import TASK_UTILS, TRANSFORMS

from .load_priors import check_untransformed, set_prior_targets


@TRANSFORMS.register_module()
class GenerateImagePriors(BaseTransform):
    """Compute the image's object priors online, as the baselines do.

    DETReg recomputes selective search boxes for every sample every epoch;
    UP-DETR draws new random patches. This transform runs an image prior
    generator (``input_type = 'image'``:
    :class:`SelectiveSearchPriorGenerator`, :class:`RandomCropPriorGenerator`)
    on the loaded image and sets its boxes as the ground truth, label 0
    ("object"), exactly as :class:`LoadPriors` does for JoinDet's stored
    priors; everything downstream (pipeline, detector, objective) is
    shared, so the baselines differ from JoinDet only in their priors
    (paper Sec. 3, Tables 1 and 4). Like :class:`LoadPriors` it must come
    right after the image is loaded.

    Required keys: ``img`` (uint8 ``[H, W, 3]`` BGR or ``[H, W]``),
    ``img_shape``, ``ori_shape``. Added keys: ``gt_bboxes``
    (:obj:`HorizontalBoxes` float32 ``[k, 4]`` xyxy, original-image
    pixels), ``gt_bboxes_labels`` (int64 zeros), ``gt_ignore_flags``.

    Args:
        generator (dict): A ``TASK_UTILS`` prior generator of images.
        min_size (float): Smallest width and height kept, in pixels.
            Defaults to 1.0.
        max_priors (int, optional): Cap after the generator's own.
            Defaults to None.
    """

    def __init__(self,
                 generator: dict,
                 min_size: float = 1.0,
                 max_priors: Optional[int] = None) -> None:
        self.generator = TASK_UTILS.build(generator)
        if getattr(self.generator, 'input_type', None) != 'image':
            raise TypeError(
                f'{type(self).__name__} needs a prior generator of images '
                "(input_type 'image'), got "
                f'{type(self.generator).__name__}: feature generators run '
                'inside the model (PriorUpdateHook)')
        self.min_size = float(min_size)
        self.max_priors = max_priors

    def transform(self, results: dict) -> dict:
        """Add the generator's boxes of ``results['img']`` as ``gt_*``."""
        check_untransformed(results, type(self).__name__)
        priors = self.generator.generate([results['img']])[0]
        set_prior_targets(results, priors.bboxes.numpy(),
                          priors.scores.numpy(), self.min_size,
                          self.max_priors)
        return results

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(generator={self.generator!r}, '
                f'min_size={self.min_size}, max_priors={self.max_priors})')

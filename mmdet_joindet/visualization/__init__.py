# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Figures: the paper's Figure 6 and predictions against ground truth."""
from .figures import prediction_figure, prior_figure
from .prior_figure import draw_boxes, eigen_map_panel, panel_grid, save_png

__all__ = [
    'prior_figure', 'prediction_figure', 'draw_boxes', 'eigen_map_panel',
    'panel_grid', 'save_png'
]

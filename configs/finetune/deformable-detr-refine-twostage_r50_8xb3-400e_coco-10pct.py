# The 10% COCO supervised recipe on mmdet's two-stage Deformable DETR with
# iterative box refinement.
_base_ = './deformable-detr_r50_8xb3-400e_coco-10pct.py'

model = dict(with_box_refine=True, as_two_stage=True)  # was plain

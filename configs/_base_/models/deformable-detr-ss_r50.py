# Single-scale Deformable DETR (the paper's ablations, Sec. 4: "single-scale
# deformable DETR") as a delta of mmdet's 4-level model: C5 only, one
# feature level in the encoder and the decoder. mmengine forbids one key in
# two bases, so a config lists this file beside its full base and starts its
# `model` from the delta (as with tiny-deformable-detr_r18.py).
single_scale_model = dict(
    num_feature_levels=1,  # was 4
    backbone=dict(out_indices=(3, )),  # was C3-C5
    neck=dict(in_channels=[2048], num_outs=1),
    encoder=dict(layer_cfg=dict(self_attn_cfg=dict(num_levels=1))),
    decoder=dict(layer_cfg=dict(cross_attn_cfg=dict(num_levels=1))))

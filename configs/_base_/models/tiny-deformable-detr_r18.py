# A CPU-sized Deformable DETR as a delta of mmdet's model: a ResNet-18
# without pretrained weights (nothing downloads), one encoder and one decoder
# layer of `tiny_embed_dims` channels. mmengine forbids one key in two bases,
# so a config lists this file beside its full base and starts its `model`
# from the delta:
#   _base_ = ['<full config>', '../_base_/models/tiny-deformable-detr_r18.py']
#   model = dict(_base_.tiny_model, num_queries=10, ...)
# mmdet_joindet.testing.tiny_detr_config applies the same delta to any
# Deformable-DETR-family config in the tests.
tiny_embed_dims = 64
tiny_model = dict(
    backbone=dict(depth=18, init_cfg=None),  # was R-50 with weights
    neck=dict(in_channels=[128, 256, 512], out_channels=tiny_embed_dims),
    encoder=dict(
        num_layers=1,  # was 6
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=tiny_embed_dims),
            ffn_cfg=dict(
                embed_dims=tiny_embed_dims,
                feedforward_channels=2 * tiny_embed_dims))),
    decoder=dict(
        num_layers=1,  # was 6
        layer_cfg=dict(
            self_attn_cfg=dict(embed_dims=tiny_embed_dims),
            cross_attn_cfg=dict(embed_dims=tiny_embed_dims),
            ffn_cfg=dict(
                embed_dims=tiny_embed_dims,
                feedforward_channels=2 * tiny_embed_dims))),
    positional_encoding=dict(num_feats=tiny_embed_dims // 2),
    bbox_head=dict(embed_dims=tiny_embed_dims))

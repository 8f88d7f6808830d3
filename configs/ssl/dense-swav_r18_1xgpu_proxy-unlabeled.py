# The Dense SwAV run of dense-swav_r18_proxy-unlabeled.py at one GPU's
# scale: batch 256 instead of 32 for the same 800 iterations (8x the
# views), on the unlabeled images of
#   python tools/misc/make_proxy_data.py --num-unlabeled 6000
# (the same val split as the default 2000). Run:
#   python tools/train_ssl_backbone.py <this file>
# benchmarks/gpu_checks.sh runs it on a GPU machine and reads R0 of the
# backbone it writes; docs/benchmarks.md has the figures (an H200: 0.24 s
# an iteration, 3.5 minutes, bound by the data loader, not the GPU).
_base_ = './dense-swav_r18_proxy-unlabeled.py'

train_dataloader = dict(batch_size=256, num_workers=16)
# AdamW's rate doubled for the 8x batch (between sqrt and linear scaling,
# as Adam tolerates less than linear).
optim_wrapper = dict(optimizer=dict(lr=2e-3))
default_hooks = dict(
    logger=dict(interval=50),
    # a run stopped early still leaves weights to export
    checkpoint=dict(interval=200, max_keep_ckpts=1))
env_cfg = dict(cudnn_benchmark=True)

# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""JoinDet checkpoint -> stock mmdet DeformableDETR, through ``load_from``."""
import importlib.util
import os
import os.path as osp
import pickle
import sys

import numpy as np
import pytest
import torch
from mmdet.registry import MODELS
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.hub import get_config
from mmengine.logging import MessageHub
from mmengine.optim import MultiStepLR, OptimWrapper
from mmengine.runner import load_checkpoint, save_checkpoint

import mmdet_joindet
from mmdet_joindet.testing import run_checked, tiny_detr_config
from mmdet_joindet.utils import convert_checkpoint

REPO = osp.dirname(osp.dirname(osp.dirname(__file__)))
TOOL = osp.join(REPO, 'tools/model_converters/joindet_to_deformable_detr.py')
JOINDET_CFG = osp.join(
    REPO, 'configs/_base_/models/joindet_deformable-detr_r50-swav.py')
STOCK_CFG = 'mmdet::deformable_detr/deformable-detr_r50_16xb2-50e_coco.py'
EMB, CLS = 'bbox_head.emb_branch.', 'bbox_head.cls_branches.'
REFINE_TWO_STAGE = dict(with_box_refine=True, as_two_stage=True)


@pytest.fixture(scope='module', autouse=True)
def registered():
    register_all_modules()


def randomize(model):
    """Give every float parameter/buffer a distinctive random value."""
    with torch.no_grad():
        for value in model.state_dict().values():
            if value.is_floating_point():
                value.copy_(torch.randn_like(value))


def joindet(seed=0, backbone=None, **variant):
    """A tiny JoinDet whose every float parameter/buffer is distinctive."""
    cfg = Config.fromfile(JOINDET_CFG)
    cfg.model.update(variant)
    cfg.model.backbone.update(backbone or {})
    torch.manual_seed(seed)
    model = MODELS.build(tiny_detr_config(cfg).model)
    randomize(model)
    return model


def stock(num_classes=80, **variant):
    """mmdet's own tiny DeformableDETR, as a finetuning config builds it."""
    cfg = get_config(STOCK_CFG)
    cfg.model.update(variant)
    cfg.model.bbox_head.num_classes = num_classes
    torch.manual_seed(1)
    model = MODELS.build(tiny_detr_config(cfg).model)
    model.init_weights()  # as the runner does before `load_from`
    return model


def save_runner_checkpoint(model, path):
    """What ``Runner.save_checkpoint`` writes, with a real optimizer state,
    scheduler and message hub (HistoryBuffer, numpy scalars)."""
    params = [p for p in model.parameters() if p.requires_grad]
    optim = OptimWrapper(torch.optim.AdamW(params, lr=1e-4))
    for p in params:
        p.grad = torch.zeros_like(p)
    optim.step()  # creates exp_avg/exp_avg_sq state
    scheduler = MultiStepLR(optim, milestones=[40])
    hub = MessageHub.get_instance(f'convert_{osp.basename(path)}')
    hub.update_scalar('train/loss', np.float64(1.5))
    hub.update_scalar('train/lr', 1e-4)
    hub.update_info('iter', 10)
    save_checkpoint(
        dict(
            meta=dict(
                epoch=1,
                iter=10,
                seed=0,
                experiment_name='joindet_pretrain',
                dataset_meta=dict(classes=('foreground', ))),
            state_dict=model.state_dict(),
            message_hub=hub.state_dict(),
            optimizer=optim.state_dict(),
            param_schedulers=[scheduler.state_dict()]), str(path))


def load_tool():
    spec = importlib.util.spec_from_file_location('convert_tool', TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


def load_plain(path):
    """``torch.load(weights_only=True)`` without this plugin's allow-list."""
    saved = torch.serialization.get_safe_globals()
    torch.serialization.clear_safe_globals()
    try:
        return torch.load(path)
    finally:
        torch.serialization.add_safe_globals(saved)


def check_finetune_load(pretrained, out, dropped_prefixes, **variant):
    """A stock 80-class DeformableDETR loads ``out``: only the classifiers
    are missing, nothing is unexpected, every other value is the JoinDet
    one; the same through mmengine's ``load_from`` path."""
    source = pretrained.state_dict()
    ckpt = load_plain(out)  # no numpy/mmengine globals left in the file
    assert set(ckpt) == {'state_dict', 'meta'}
    meta = ckpt['meta']
    assert meta['mmdet_joindet_version'] == mmdet_joindet.__version__
    assert sorted(meta['dropped']) == sorted(
        k for k in source if k.startswith(dropped_prefixes))

    model = stock(**variant)
    target = model.state_dict()
    cls_keys = {k for k in target if k.startswith(CLS)}
    assert cls_keys and {k for k in source if k.startswith(CLS)} == cls_keys
    init_cls = {k: target[k].clone() for k in cls_keys}
    missing, unexpected = model.load_state_dict(
        ckpt['state_dict'], strict=False)
    assert set(missing) == cls_keys and unexpected == []
    loaded = model.state_dict()
    for key in set(target) - cls_keys:
        assert torch.equal(loaded[key], source[key]), key
    for key in cls_keys:  # left to DeformableDETRHead.init_weights
        assert torch.equal(loaded[key], init_cls[key]), key

    randomize(model)
    load_checkpoint(model, str(out), map_location='cpu')
    for key, value in model.state_dict().items():
        if key not in cls_keys:
            assert torch.equal(value, source[key]), key


@pytest.fixture(scope='module')
def plain(tmp_path_factory):
    """A tiny plain JoinDet and its runner checkpoint."""
    model = joindet()
    path = tmp_path_factory.mktemp('plain') / 'iter_10.pth'
    save_runner_checkpoint(model, path)
    return model, path


def test_cli_converts_a_runner_checkpoint(plain, tmp_path):
    model, src = plain
    with pytest.raises(pickle.UnpicklingError):
        load_plain(src)  # a real runner file: needs the plugin's allow-list
    dst = tmp_path / 'out' / 'joindet_converted.pth'  # folder is created
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [REPO] + [p for p in [env.get('PYTHONPATH')] if p])
    stdout = run_checked([sys.executable, TOOL,
                          str(src), str(dst)],
                         REPO,
                         env,
                         timeout=120,
                         merge_stderr=False)
    source = model.state_dict()
    num_emb = sum(k.startswith(EMB) for k in source)
    num_cls = sum(k.startswith(CLS) for k in source)
    assert num_emb == 6 and num_cls > 0
    assert stdout.strip().splitlines()[-1] == (
        f'{src} -> {dst}: kept {len(source) - num_emb - num_cls} keys, '
        f'dropped {num_emb + num_cls}: bbox_head.cls_branches ({num_cls}), '
        f'bbox_head.emb_branch ({num_emb})')  # in state-dict order
    assert torch.load(dst)['meta']['converted_from'] == 'iter_10.pth'
    assert sorted(os.listdir(dst.parent)) == ['joindet_converted.pth']
    check_finetune_load(model, dst, (EMB, CLS))


def test_refine_two_stage_and_trainable_backbone(tmp_path):
    """Box refinement + two-stage: one classifier per decoder layer plus the
    encoder's, ``memory_trans_*``/``pos_trans_*`` kept. A backbone trained
    during pretraining: the frozen embedding extractor is dropped too."""
    model = joindet(backbone=dict(frozen_stages=1), **REFINE_TWO_STAGE)
    assert model.emb_extractor is not None
    src, dst = tmp_path / 'in.pth', tmp_path / 'out.pth'
    save_runner_checkpoint(model, src)
    summary = convert_checkpoint(str(src), str(dst))
    assert summary['kept'] + len(summary['dropped']) == len(model.state_dict())
    assert set(summary['dropped_modules']) == {
        'bbox_head.emb_branch', 'bbox_head.cls_branches', 'emb_extractor'
    }
    assert summary['dropped_modules']['bbox_head.cls_branches'] == 2 * (
        model.decoder.num_layers + 1)  # weight and bias per classifier
    check_finetune_load(model, dst, (EMB, CLS, 'emb_extractor.'),
                        **REFINE_TWO_STAGE)


def test_keep_cls_and_bare_state_dict(plain, tmp_path):
    """``keep_cls`` keeps the 1-logit classifier for a one-class detector;
    a bare ``state_dict`` (no runner fields) converts the same way."""
    model, _ = plain
    src, dst = tmp_path / 'bare.pth', tmp_path / 'out.pth'
    torch.save(model.state_dict(), src)
    summary = convert_checkpoint(str(src), str(dst), keep_cls=True)
    assert set(summary['dropped_modules']) == {EMB[:-1]}
    one_class = stock(num_classes=1)
    load_checkpoint(one_class, str(dst), strict=True)
    source = model.state_dict()
    for key, value in one_class.state_dict().items():
        assert torch.equal(value, source[key]), key


def test_refuses_other_checkpoints(plain, tmp_path, capsys):
    """A stock detector's or an already converted checkpoint is refused
    with what was expected; nothing is written."""
    other = tmp_path / 'deformable_detr.pth'
    save_runner_checkpoint(stock(), other)
    dst = tmp_path / 'out.pth'
    with pytest.raises(
            ValueError,
            match=r'not a JoinDet state dict: '
            r'expected `bbox_head\.emb_branch\.\*` keys'):
        convert_checkpoint(str(other), str(dst))
    with pytest.raises(SystemExit) as exc:
        load_tool().main([str(other), str(dst)])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert 'error: ' in err and 'not a JoinDet state dict' in err
    assert not dst.exists()

    convert_checkpoint(str(plain[1]), str(dst))
    with pytest.raises(ValueError, match='already converted'):
        convert_checkpoint(str(dst), str(tmp_path / 'again.pth'))
    torch.save([1, 2], tmp_path / 'list.pth')
    with pytest.raises(ValueError, match='expected an mmengine checkpoint'):
        convert_checkpoint(str(tmp_path / 'list.pth'), str(dst))


def test_refuses_to_overwrite_the_input(plain, tmp_path):
    src = tmp_path / 'in.pth'
    src.write_bytes(plain[1].read_bytes())
    link = tmp_path / 'link.pth'
    link.symlink_to(src)
    hard = tmp_path / 'hard.pth'
    os.link(src, hard)
    before = src.read_bytes()
    for dst in (src, tmp_path / '.' / 'in.pth', link, hard):
        with pytest.raises(ValueError, match='is the input checkpoint'):
            convert_checkpoint(str(src), str(dst))
    assert src.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ['hard.pth', 'in.pth', 'link.pth']


def test_failed_write_keeps_the_old_output(plain, tmp_path, monkeypatch):
    dst = tmp_path / 'out.pth'
    dst.write_bytes(b'previous conversion')

    def broken_save(obj, f, *args, **kwargs):
        with open(f, 'wb') as fh:
            fh.write(b'partial')
        raise OSError('No space left on device')

    monkeypatch.setattr(torch, 'save', broken_save)
    with pytest.raises(OSError, match='No space left'):
        convert_checkpoint(str(plain[1]), str(dst))
    assert dst.read_bytes() == b'previous conversion'
    assert os.listdir(tmp_path) == ['out.pth']  # no temporary file left

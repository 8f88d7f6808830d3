# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""What a model-zoo release reads: model-index.yml, the metafile, the
README's links, and the publish tool's refusals."""
import os.path as osp
import re

import pytest
import torch
import yaml

from mmdet_joindet.utils.publish import publish_checkpoint

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def test_model_index_points_at_metafiles_whose_configs_exist():
    with open(osp.join(REPO, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    assert index['Import'] == ['configs/joindet/metafile.yml']
    for metafile in index['Import']:
        with open(osp.join(REPO, metafile)) as f:
            meta = yaml.safe_load(f)
        names = {c['Name'] for c in meta['Collections']}
        assert osp.isfile(osp.join(REPO, meta['Collections'][0]['README']))
        models = meta['Models']
        assert len({m['Name'] for m in models}) == len(models)
        for model in models:
            assert model['In Collection'] in names
            assert osp.isfile(osp.join(REPO, model['Config'])), model
            assert osp.basename(model['Config']) == model['Name'] + '.py'
            # a result is entered with the published checkpoint that
            # produced it (tools/model_converters/publish_model.py)
            if model['Results']:
                assert re.search(r'-[0-9a-f]{8}\.pth$', model['Weights'])


def test_readme_links_resolve():
    readme = osp.join(REPO, 'configs/joindet/README.md')
    text = open(readme).read()
    links = re.findall(r'\]\(([^)#]+\.(?:py|md))\)', text)
    assert len(links) > 15
    for link in links:
        assert osp.isfile(osp.join(osp.dirname(readme), link)), link


def test_publish_refuses_bad_input(tmp_path):
    not_a_ckpt = tmp_path / 'x.pth'
    torch.save({'a': 1}, not_a_ckpt)
    with pytest.raises(ValueError, match='expected an mmengine checkpoint'):
        publish_checkpoint(str(not_a_ckpt), str(tmp_path / 'out.pth'))
    ckpt = tmp_path / 'model.pth'
    torch.save(dict(state_dict={'w': torch.ones(2)}, optimizer={}), ckpt)
    with pytest.raises(ValueError, match='is the input checkpoint'):
        publish_checkpoint(str(ckpt), str(ckpt))
    out = publish_checkpoint(str(ckpt), str(tmp_path / 'pub' / 'm'))
    assert out['removed'] == ['optimizer'] and out['kept'] == ['state_dict']
    assert osp.basename(out['path']) == f'm-{out["sha256"][:8]}.pth'
    assert not list((tmp_path / 'pub').glob('.*'))  # no temporary left

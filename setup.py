#!/usr/bin/env python
# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""Install mmdet_joindet.

Like OpenMMLab packages, ``configs/`` and ``tools/`` are shipped inside the
package under ``mmdet_joindet/.mim/`` so that ``mim train mmdet_joindet
<config>`` finds them: copied for a wheel/sdist/regular install, symlinked
for an editable (develop) install.
"""
import os
import os.path as osp
import shutil
import sys
from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))
MIM_FILES = ('configs', 'tools')


def read_version() -> str:
    scope: dict = {}
    with open(osp.join(HERE, 'mmdet_joindet', 'version.py')) as f:
        exec(compile(f.read(), 'version.py', 'exec'), scope)
    return scope['__version__']


def parse_requirements(name: str) -> list:
    """Requirement lines of ``requirements/<name>.txt`` (no comments)."""
    with open(osp.join(HERE, 'requirements', f'{name}.txt')) as f:
        lines = (line.split('#')[0].strip() for line in f)
        return [line for line in lines if line]


def add_mim_extension() -> None:
    """Copy or link configs/ and tools/ into mmdet_joindet/.mim/."""
    if 'develop' in sys.argv or 'editable_wheel' in sys.argv:
        mode = 'symlink'
    elif {'sdist', 'bdist_wheel', 'install', 'build'} & set(sys.argv):
        mode = 'copy'
    else:
        return
    mim_root = osp.join(HERE, 'mmdet_joindet', '.mim')
    os.makedirs(mim_root, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(HERE, name), osp.join(mim_root, name)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_root), dst)
        else:
            shutil.copytree(
                src,
                dst,
                ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))


if __name__ == '__main__':
    add_mim_extension()
    setup(
        name='mmdet_joindet',
        version=read_version(),
        description='JoinDet: joint object-prior generation and detector '
        'pretraining, as an MMDetection 3.x plugin',
        long_description=open(osp.join(HERE, 'README.md')).read(),
        long_description_content_type='text/markdown',
        license='Apache License 2.0',
        packages=find_packages(
            exclude=('configs', 'tools', 'tests', 'benchmarks')),
        include_package_data=True,
        package_data={
            'mmdet_joindet':
            ['.mim/configs/**/*', '.mim/tools/**/*', 'datasets/*.txt']
        },
        python_requires='>=3.8',
        install_requires=parse_requirements('runtime'),
        extras_require={
            'mim': parse_requirements('mminstall'),
            'optional': parse_requirements('optional'),
            'tests': parse_requirements('tests'),
        },
        zip_safe=False)

# Copyright (c) mmdet_joindet contributors. All rights reserved.
"""A job's stages: ordinary runs of the package's tools, each in its own
work dir, skipped when done and resumed when interrupted.

A stage is done when its ``DONE.json`` exists (written atomically last,
with its outputs and seconds); a training stage that was interrupted
resumes from its work dir's last checkpoint (mmengine's ``--resume``).
Each tool runs in a subprocess with this Python, its output (mmengine's
logger with ETAs, progress bars) passing through, so what a stage does is
exactly what its command does on its own.
"""
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

from mmdet_joindet.utils.atomic import write_bytes_atomic
from mmdet_joindet.utils.paths import repo_file

__all__ = ['Stage', 'run_tool', 'StageFailed', 'set_processes']

DONE = 'DONE.json'
# processes per machine for every tool this Python runs (set_processes)
_LAUNCH = dict(nproc=1)


def set_processes(nproc: int) -> None:
    """Run every later tool of this job on ``nproc`` processes (one per
    GPU; gloo CPU processes where no GPU is there) through
    ``torch.distributed.run --launcher pytorch``, as
    ``tools/dist_train.sh`` does; 1 runs them in one plain process."""
    if nproc < 1:
        raise ValueError(f'the number of processes must be >= 1, got {nproc}')
    _LAUNCH['nproc'] = nproc


def _launch(script: str, args: Sequence[str]) -> List[str]:
    """The command line of ``tools/<script> args`` under the launch
    setting."""
    tool = repo_file(f'tools/{script}')
    nproc = _LAUNCH['nproc']
    if nproc == 1:
        return [sys.executable, tool, *map(str, args)]
    import torch
    extra = ['--launcher', 'pytorch']
    if not torch.cuda.is_available():  # CPU processes talk over gloo
        extra += ['--cfg-options', 'env_cfg.dist_cfg.backend=gloo']
    return [
        sys.executable, '-m', 'torch.distributed.run',
        f'--nproc_per_node={nproc}', f'--master_port={_free_port()}', tool,
        *map(str, args), *extra
    ]


def _free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class StageFailed(RuntimeError):
    """A stage's command exited with an error (its output says why)."""


def run_tool(script: str,
             args: Sequence[str],
             log: Optional[str] = None,
             env: Optional[Dict[str, str]] = None) -> None:
    """Run ``tools/<script>`` with this Python (on the processes of
    :func:`set_processes`); output passes through (and is appended to
    ``log``).

    Raises:
        StageFailed: On a non-zero exit.
    """
    cmd = _launch(script, args)
    env = dict(os.environ if env is None else env)
    # the package this job imports, whether installed or run from a
    # checkout
    package_root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    env['PYTHONPATH'] = os.pathsep.join(
        p for p in (package_root, env.get('PYTHONPATH')) if p)
    print('$ ' + ' '.join(cmd[1:]), flush=True)
    sink = open(log, 'a') if log else None
    try:
        proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            bufsize=1)
        for line in proc.stdout:
            sys.stdout.write(line)
            if sink:
                sink.write(line)
        code = proc.wait()
    finally:
        if sink:
            sink.close()
    if code != 0:
        raise StageFailed(f'{script} exited with {code}: see the output '
                          f'above{f" and {log}" if log else ""}')


class Stage:
    """One stage of a job, in ``work_dir``.

    Args:
        name (str): Short name (also the work dir's last part).
        title (str): What it does, for the job's output.
        work_dir (str): Its own folder.
    """

    def __init__(self, name: str, title: str, work_dir: str) -> None:
        self.name = name
        self.title = title
        self.work_dir = work_dir

    @property
    def done_file(self) -> str:
        return osp.join(self.work_dir, DONE)

    def result(self) -> Optional[Dict]:
        """The ``DONE.json`` of a finished stage, None otherwise."""
        if not osp.isfile(self.done_file):
            return None
        with open(self.done_file) as f:
            return json.load(f)

    def can_resume(self) -> bool:
        """Whether an interrupted training left a checkpoint to resume."""
        return osp.isfile(osp.join(self.work_dir, 'last_checkpoint'))

    def run(self, body: Callable[['Stage'], Dict]) -> Dict:
        """Run ``body(self)`` unless done; record its outputs and time.

        Returns:
            dict: ``DONE.json``: what ``body`` returned, ``seconds`` and
            ``skipped`` (True when it was done before).
        """
        done = self.result()
        head = self.title
        if done is not None:
            print(
                f'== {head}: done before ({done["seconds"]:.0f} s), '
                f'skipped ({self.done_file})',
                flush=True)
            return dict(done, skipped=True)
        print(f'== {head} -> {self.work_dir}', flush=True)
        os.makedirs(self.work_dir, exist_ok=True)
        start = time.perf_counter()
        out = body(self)
        out = dict(out, seconds=round(time.perf_counter() - start, 1))
        write_bytes_atomic(self.done_file, json.dumps(out, indent=1).encode())
        print(f'== {head}: {out["seconds"]:.0f} s', flush=True)
        return dict(out, skipped=False)

    def train(self, script: str, config: str,
              options: Sequence[str] = ()) -> List[str]:
        """``tools/<script> CONFIG --work-dir WORK_DIR`` (resuming when a
        checkpoint is there), with ``--cfg-options``; returns the command's
        arguments."""
        args = [config, '--work-dir', self.work_dir]
        if self.can_resume():
            print(f'resuming {self.name} from {self.work_dir}', flush=True)
            args.append('--resume')
        if options:
            args += ['--cfg-options', *options]
        run_tool(script, args, log=osp.join(self.work_dir, 'job.log'))
        return args

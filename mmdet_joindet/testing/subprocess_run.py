# Copyright (c) mmdet_joindet contributors. All rights reserved.
import subprocess
from typing import Mapping, Optional, Sequence


def run_checked(cmd: Sequence[str],
                cwd: str,
                env: Optional[Mapping[str, str]] = None,
                timeout: float = 600,
                merge_stderr: bool = True) -> str:
    """Run a command to completion and require it to succeed.

    Args:
        cmd (Sequence[str]): The command line.
        cwd (str): Its working folder.
        env (Mapping[str, str], optional): Its environment (None: ours).
        timeout (float): Seconds before it is killed (a test failure).
        merge_stderr (bool): Return stderr interleaved with stdout (True)
            or stdout alone (False). Defaults to True.

    Returns:
        str: What the command printed (see ``merge_stderr``).

    Raises:
        AssertionError: On a non-zero exit status, with the command and
            the end of everything it printed.
    """
    proc = subprocess.run(
        list(cmd),
        cwd=cwd,
        env=None if env is None else dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
        timeout=timeout)
    printed = proc.stdout + (proc.stderr or '')
    assert proc.returncode == 0, (
        f'{" ".join(map(str, cmd))} exited with {proc.returncode}:\n'
        f'{printed[-6000:]}')
    return proc.stdout

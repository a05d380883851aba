"""torchrun with 2 CPU processes (gloo): sharded extraction merges into the single-process cache."""

import os
import subprocess
import sys

import numpy as np

from magtask.codes import open_codes
from magtask.tensorfile import open_tensors

from conftest import run_cli_fresh as run_cli


def test_two_process_extraction_equals_single_process(tiny_dataset, tiny_tokenizer, tmp_path):
    single, multi = tmp_path / "single", tmp_path / "multi"
    args = ["codes", "extract", "--data", str(tiny_dataset), "--tokenizer", str(tiny_tokenizer), "--batch-size", "8"]
    run_cli(*args, env={"MAGTASK_CACHE_DIR": str(single)}, check=True)
    env = {**os.environ, "MAGTASK_CACHE_DIR": str(multi), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "magtask", *args], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [a] = list((single / "codes").glob("*.safetensors"))
    [b] = list((multi / "codes").glob("*.safetensors"))
    assert a.name == b.name
    assert not list((multi / "codes").glob(".*tmp"))  # part files cleaned up
    ta, ma = open_tensors(a)
    tb, mb = open_tensors(b)
    assert ma == mb
    for k in ta:
        assert np.array_equal(ta[k], tb[k]), k  # bit for bit
    assert len(open_codes(b).labels) == 80

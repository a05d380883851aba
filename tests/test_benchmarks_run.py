"""`python benchmarks/run.py --quick`: every step runs and the table lands between its markers."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[1] / "benchmarks" / "run.py"


def test_run_py_quick_writes_its_table(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\nkept text\n")
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(RUN), "--quick", "--heads", "classify:mlp", "--readme", str(readme),
           "--json", str(out), "--workdir", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    text = readme.read_text()
    assert text.startswith("# Benchmarks\n\nkept text\n")
    assert text.count("<!-- run.py:per-class-8:begin -->") == 1 and "<!-- run.py:per-class-8:end -->" in text
    for step in ("data generate", "tokenizer train", "codes extract", "code cache load", "run classify mlp-classifier"):
        assert f"| {step} |" in text, step
    assert "cores" in text and "torch" in text
    res = json.loads(out.read_text())
    steps = {s["step"]: s for s in res["steps"]}
    assert all(s["rss_mb"] > 0 and s["seconds"] > 0 for s in res["steps"])
    assert steps["codes extract"]["extract"]["videos"] == 32 and 0 < steps["codes extract"]["extract"]["ratio"]
    assert 0 <= steps["run classify mlp-classifier"]["metrics"]["accuracy"] <= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "results.json"]  # work dir removed


def test_run_py_bad_head_is_one_line(tmp_path):
    proc = subprocess.run([sys.executable, str(RUN), "--quick", "--heads", "classify:nope", "--readme",
                           str(tmp_path / "R.md"), "--workdir", str(tmp_path)], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 1 and "no head 'classify:nope'" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "R.md").exists() and list(tmp_path.iterdir()) == []


def test_a_rerun_replaces_only_its_own_table(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    readme = tmp_path / "README.md"
    readme.write_text("# B\n")
    mod.write_readme(readme, "per-class-8", "first", 8)
    mod.write_readme(readme, "per-class-500", "other size", 500)
    mod.write_readme(readme, "per-class-8", "second", 8)
    text = readme.read_text()
    assert text.startswith("# B\n") and "first" not in text and text.count("second") == 1
    assert "other size" in text and text.index("second") < text.index("other size")  # stays in place

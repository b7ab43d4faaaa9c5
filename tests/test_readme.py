"""The README's example runs as written."""
import os
import re
import subprocess
import sys

README = os.path.join(os.path.dirname(__file__), "..", "README.md")


def _blocks():
    with open(README) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), re.S)


def _run(tmp_path, code):
    script = tmp_path / "example.py"
    script.write_text(code)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_readme_program_example_runs(tmp_path):
    code = [b for b in _blocks() if "mprt.run(main)" in b][0]
    assert _run(tmp_path, code).split() == ["100", "1", "late", "True"]


def test_readme_go_programs_example_runs(tmp_path):
    code = [b for b in _blocks() if "stateful goroutines" in b][0]
    assert _run(tmp_path, code).splitlines() == [
        "[2, 4, 6, 8, 10]", "request 0", "request 1", "request 2", "stateful goroutines 50000",
        "stopped: True", "3 ticks", "[('cat', 1), ('dog', 1), ('saw', 1), ('the', 2)]"]


def test_readme_heap_example_runs(tmp_path):
    code = [b for b in _blocks() if "malloc.create()" in b][0]
    assert _run(tmp_path, code).split()[:1] == ["4999950000"]


def test_readme_commands_are_what_ci_runs():
    with open(README) as f:
        first = re.search(r"```sh\n(.*?)```", f.read(), re.S).group(1).splitlines()
    main_job, tests = (ln.split("#")[0].strip() for ln in first[:2])
    assert main_job == "pip install -e . && mprt bench --quick"
    with open(os.path.join(os.path.dirname(README), ".ci", "run")) as f:
        assert tests in f.read()

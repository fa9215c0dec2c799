"""The `ecrm` command: -p parsing, run/validate/sample, help texts, exit codes."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

from ecrm_research.cli import main, parse_param_value
from ecrm_research.exceptions import ParameterError, SchemaError
from ecrm_research.report import notebooks, runner

NB_DIR = Path(__file__).parent / "notebooks"
NB = ["--notebooks-dir", str(NB_DIR), "--no-progress"]


@pytest.fixture
def test_notebooks(monkeypatch):
    """Make the test notebooks the default notebooks folder (for help texts)."""
    monkeypatch.setattr(notebooks, "NOTEBOOKS_DIR", NB_DIR)


@pytest.mark.parametrize("text, expected", [
    ("3", 3),
    ("-2", -2),
    ("0.05", 0.05),
    ("1e-3", 0.001),
    ("true", True),
    ("False", False),
    ("null", None),
    ("[a, b]", ["a", "b"]),
    ("[1, 2.5]", [1, 2.5]),
    ("{A: [x, y]}", {"A": ["x", "y"]}),
    ("{Champions: [email, coupon], At risk: [call]}", {"Champions": ["email", "coupon"], "At risk": ["call"]}),
    ("hello", "hello"),
    ("no", "no"),            # YAML 1.1 would make this False
    ("on", "on"),
    ("2024-01-01", "2024-01-01"),  # dates stay strings
    ("'3'", "3"),            # quoting keeps a number a string
    ("Note: x", "Note: x"),  # a colon in a word is not a mapping
    ("", ""),
])
def test_param_values_are_parsed_as_yaml(text, expected):
    value = parse_param_value(text)
    assert value == expected
    assert type(value) is type(expected)


def test_malformed_yaml_list_is_a_parameter_error():
    with pytest.raises(ParameterError, match=r"\[a, b"):
        parse_param_value("[a, b")


def test_run_injects_typed_params_and_prints_one_line_per_notebook(tmp_path, capsys):
    code = main(["run", "hello", "--out", str(tmp_path), *NB,
                 "-p", "n_items", "4", "-p", "rate", "0.5", "-p", "flag", "true",
                 "-p", "items", "[x, y]", "-p", "groups", "{A: [x, y]}", "-p", "label", "hello",
                 "-p", "data_format", "lines", "--data", "some/file.csv"])
    out = capsys.readouterr()
    assert code == 0, out.err
    got = json.loads((tmp_path / "hello" / "params.json").read_text())["values"]
    assert got["n_items"] == 4 and got["rate"] == 0.5 and got["flag"] is True
    assert got["items"] == ["x", "y"] and got["groups"] == {"A": ["x", "y"]} and got["label"] == "hello"
    assert got["data_format"] == "lines"  # -p data_format X == --data-format X
    assert got["data"] == str(Path("some/file.csv").resolve())
    lines = out.out.strip().splitlines()
    assert lines[0].split()[:2] == ["hello", "ok"]
    assert lines[0].split()[2].endswith("s") and lines[0].split()[3] == str(tmp_path / "hello")
    assert lines[-1] == f"index: {tmp_path / 'index.html'}"
    assert (tmp_path / "index.html").is_file()


def test_run_all_with_a_failure_exits_nonzero_and_marks_it(tmp_path, capsys):
    code = main(["run", "all", "--out", str(tmp_path), *NB])
    out = capsys.readouterr()
    assert code == 1
    rows = {line.split()[0]: line.split()[1] for line in out.out.splitlines() if line and not line[0].isspace()}
    assert rows["hello"] == "ok" and rows["boom"] == "failed"
    assert "error: ValueError: planted failure <middle>" in out.out
    assert "1 of 2 notebooks failed: boom" in out.err
    index = (tmp_path / "index.html").read_text()
    assert '<section class="card failed" id="boom">' in index
    assert '<section class="card ok" id="hello">' in index


def test_unknown_notebook_name_lists_names_without_traceback(capsys):
    code = main(["run", "nope", *NB])
    err = capsys.readouterr().err
    assert code == 2
    assert "error: Unknown notebook 'nope'" in err and "hello, boom" in err
    assert "Traceback" not in err


def test_undeclared_param_exits_2_listing_declared(tmp_path, capsys):
    code = main(["run", "hello", "--out", str(tmp_path), *NB, "-p", "min_support", "0.1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "'min_support'" in err and "n_items" in err and "label" in err
    assert not (tmp_path / "hello").exists()


def test_conflicting_data_format_flag_and_param(tmp_path, capsys):
    code = main(["run", "hello", "--out", str(tmp_path), *NB, "--data-format", "lines",
                 "-p", "data_format", "baskets"])
    assert code == 2
    assert "disagree" in capsys.readouterr().err


def test_run_name_help_lists_notebook_parameters_with_defaults(capsys):
    code = main(["run", "hello", "--help", *NB])
    out = capsys.readouterr().out
    assert code == 0
    assert "usage: ecrm run" in out and "--data-format" in out and "-p KEY VALUE" in out
    table = out[out.index("Notebook parameters"):]
    rows = {line.split()[0]: line.split(None, 2)[2] for line in table.splitlines()[1:] if line.strip()}
    assert rows["n_items"].startswith("3") and "how many items to write" in rows["n_items"]
    assert rows["rate"] == "0.5" and rows["flag"] == "False" and rows["seed"] == "42"
    assert rows["items"] == '["a", "b"]' and rows["label"] == '"plain"' and rows["data"] == "None"
    assert "out_dir" not in rows  # set by the runner


def test_run_help_without_name_lists_analyses(capsys, test_notebooks):
    assert main(["run", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Analyses: hello, boom" in out and "Notebook parameters" not in out


def test_top_level_help_lists_commands_and_notebooks(capsys, test_notebooks):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for word in ("run", "validate", "sample", "Analyses (notebooks): hello, boom"):
        assert word in out


def test_run_without_name_is_a_usage_error(capsys, test_notebooks):
    assert main(["run"]) == 2
    assert "hello, boom" in capsys.readouterr().err


# --------------------------------------------------------------------------- validate / sample


class _FakeReport:
    summary = pd.DataFrame({"table": ["orders"], "rows": [10]})
    missing = pd.DataFrame({"table": ["orders"], "column": ["customer_id"], "n_missing": [2]})
    date_range = ("2023-01-01", "2023-12-31")


def _fake_quality(calls, raise_=None):
    def prepare(data=None, data_format=None, mapping=None, policy=None):
        calls.append({"data": data, "data_format": data_format, "mapping": mapping})
        if raise_ is not None:
            raise raise_
        ds = types.SimpleNamespace(source=data, format="canonical")
        recon = pd.DataFrame({"table": ["orders"], "input_rows": [10], "kept_rows": [8], "quarantined_rows": [2]})
        policy = types.SimpleNamespace(describe=lambda: ["drop lines without a customer"])
        after = pd.DataFrame({"table": ["orders"], "rows": [8]})
        return ds, types.SimpleNamespace(report=_FakeReport(), reconciliation=recon, policy=policy, summary=after)

    return types.SimpleNamespace(prepare=prepare)


def _install(monkeypatch, modname, module):
    """Replace ``ecrm_research.data.<modname>`` (which the CLI imports when the command runs) by a fake."""
    import ecrm_research.data

    real = importlib.import_module(f"ecrm_research.data.{modname}")
    assert getattr(ecrm_research.data, modname) is real
    monkeypatch.setitem(sys.modules, f"ecrm_research.data.{modname}", module)
    monkeypatch.setattr(ecrm_research.data, modname, module)


def test_validate_prints_quality_report_and_reconciliation(monkeypatch, capsys):
    calls = []
    _install(monkeypatch, "quality", _fake_quality(calls))
    code = main(["validate", "--data", "x.csv", "--data-format", "lines", "--mapping", "m.yaml"])
    out = capsys.readouterr().out
    assert code == 0
    assert calls == [{"data": "x.csv", "data_format": "lines", "mapping": "m.yaml"}]
    assert "== Summary ==" in out and "== Missing values ==" in out and "customer_id" in out
    assert "== Reconciliation" in out and "quarantined_rows" in out
    assert "2023-01-01" in out
    assert "== Cleaning filters ==\n- drop lines without a customer" in out and "== After cleaning ==" in out


def test_validate_data_error_exits_2_without_traceback(monkeypatch, capsys):
    err = SchemaError("orders.csv: column 'order_date' has 3 values that are not dates. Pass date_format=...")
    _install(monkeypatch, "quality", _fake_quality([], raise_=err))
    code = main(["validate", "--data", "orders.csv"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.strip() == f"error: {err.message}"
    assert "Traceback" not in captured.err + captured.out


def test_validate_requires_data(capsys):
    assert main(["validate"]) == 2
    assert "--data" in capsys.readouterr().err


def test_sample_passes_options_and_lists_written_files(monkeypatch, tmp_path, capsys):
    calls = []

    def write_sample(out_dir, **kwargs):
        calls.append((Path(out_dir), kwargs))
        p = Path(out_dir) / "orders.parquet"
        p.write_bytes(b"1234")
        return {"orders": p}

    _install(monkeypatch, "sample", types.SimpleNamespace(write_sample=write_sample))
    code = main(["sample", "--customers", "200", "--months", "6", "--seed", "3", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == 0
    assert calls == [(tmp_path, {"n_customers": 200, "months": 6, "seed": 3})]
    assert f"sample written to {tmp_path}" in out and "orders.parquet  (4 bytes)" in out


def test_keyboard_interrupt_exits_130(monkeypatch, capsys):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "run_all", interrupted)
    assert main(["run", "hello", *NB]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_console_script_error_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "ecrm_research.cli", "run", "nope", *NB],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: Unknown notebook 'nope'")
    assert "Traceback" not in proc.stderr


def test_cli_starts_without_pandas():
    """`ecrm --help` and `ecrm run` start fast: the CLI imports pandas only for the commands that need it."""
    code = "import sys, ecrm_research.cli; print(sorted(m for m in ('pandas', 'pandera', 'pyarrow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""``python -m sm_multisem`` runs the article's example and shows both fits agreeing."""

import os
import re
import shutil
import subprocess
import sys

import pytest


def test_article_example_runs_and_agrees():
    out = subprocess.run([sys.executable, "-m", "sm_multisem"], capture_output=True, text=True, check=True).stdout
    assert "Mixed-effects ML regression" in out
    assert "MultilevelSEM beside statsmodels MixedLM" in out and "converged: True" in out
    assert "sem (y1_1 <- x1_1@bx _cons@c K@1 J1@1)" in out
    comparison = out.split("beside statsmodels MixedLM")[1].split("Stata sem syntax")[0]
    rows = {m.group(1): float(m.group(2)) for m in re.finditer(r"^(\S+)\s+\S+\s+\S+\s+(\S+)", comparison, re.M)
            if m.group(1) in {"Intercept", "x", "var(k)", "var(k:j)", "var(Residual)", "llf"}}
    assert len(rows) == 6
    assert all(abs(diff) < 1e-6 for diff in rows.values())


def test_fit_a_csv_file(tmp_path):
    import sm_multisem as sms

    path = tmp_path / "data.csv"
    sms.simulate_article_data(n_clusters=30, seed=3).to_csv(path, index=False)
    run = subprocess.run([sys.executable, "-m", "sm_multisem", "fit", str(path), "y ~ x + (1|k/j)", "--reml",
                          "--cov-type", "eim", "--stata"], capture_output=True, text=True, check=True)
    assert "Mixed-effects REML regression" in run.stdout and "EIM" in run.stdout
    assert "sem (y1_1 <- x1_1@bx" in run.stdout


def test_fit_reports_bad_input_without_a_traceback(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("y,x,k\n1,2,1\n2,3,1\n")
    run = subprocess.run([sys.executable, "-m", "sm_multisem", "fit", str(path), "y ~ x + (1|k/j)"],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.startswith("error: grouping factor 'j' is not a column of the data")
    assert "Traceback" not in run.stderr


def test_fit_writes_the_path_diagram(tmp_path):
    import sm_multisem as sms

    path = tmp_path / "data.csv"
    sms.simulate_article_data(n_clusters=30, seed=3).to_csv(path, index=False)
    command = [sys.executable, "-m", "sm_multisem", "fit", str(path), "y ~ x + (1|k/j)", "--diagram"]
    run = subprocess.run([*command, str(tmp_path / "fit.dot")], capture_output=True, text=True, check=True)
    assert f"path diagram written to {tmp_path / 'fit.dot'}" in run.stdout
    slope = float(re.search(r"^x\s+(\S+)", run.stdout, re.MULTILINE).group(1))  # the summary's estimate of x
    dot = (tmp_path / "fit.dot").read_text()
    drawn = float(re.search(r'"x1_1" -> "y1_1" \[label="([^"]+)"', dot).group(1))
    assert drawn == pytest.approx(slope, rel=1e-3)

    # without Graphviz's dot program a rendered format is refused with what to install
    run = subprocess.run([*command, str(tmp_path / "fit.svg")], check=False, capture_output=True, text=True,
                         env={**os.environ, "PATH": str(tmp_path)})
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "apt-get install graphviz" in run.stderr and not (tmp_path / "fit.svg").exists()
    if shutil.which("dot"):
        subprocess.run([*command, str(tmp_path / "fit.svg")], capture_output=True, check=True)
        assert "<title>K</title>" in (tmp_path / "fit.svg").read_text()

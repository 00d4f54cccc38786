"""CLI commands that need no server: import weight, init, example."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from driftloop.example import DriftKnobs, customers
from driftloop.spec import Spec

from .conftest import Cli

HEAVY = ("torch", "mlflow", "great_expectations", "onnx", "onnxruntime", "sklearn", "pandas", "rich")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "driftloop", *args], cwd=cwd, capture_output=True, text=True)


def test_help_imports_nothing_heavy(tmp_path: Path) -> None:
    code = ("import sys, driftloop.cli; from click.testing import CliRunner; "
            "r = CliRunner().invoke(driftloop.cli.cli, ['--help']); assert r.exit_code == 0, r.output; "
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


def test_init_writes_every_default(tmp_path: Path) -> None:
    customers(rows=50).to_csv(tmp_path / "customers.csv", index=False)
    proc = run("init", "--data", "customers.csv", "--target", "churned", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    written = yaml.safe_load((tmp_path / "driftloop.yaml").read_text())
    assert set(written) == set(Spec.model_fields)
    assert written["train"]["epochs"] == 50 and written["data"]["target"] == "churned"
    again = run("init", "--data", "customers.csv", "--target", "churned", cwd=tmp_path)
    assert again.returncode == 2 and "exists; pass --force" in again.stderr


def test_init_reads_the_header_and_writes_a_path_relative_to_the_spec(tmp_path: Path) -> None:
    customers(rows=50).to_csv(tmp_path / "customers.csv", index=False)
    wrong = run("init", "--data", "customers.csv", "--target", "churn", cwd=tmp_path)
    assert wrong.returncode == 1 and not (tmp_path / "driftloop.yaml").exists()
    assert wrong.stderr.strip() == "error: customers.csv: target column 'churn' not found; did you mean 'churned'?"
    missing = run("init", "--data", "nope.csv", "--target", "churned", cwd=tmp_path)
    assert missing.returncode == 1 and "nope.csv" in missing.stderr and "Traceback" not in missing.stderr
    (tmp_path / "specs").mkdir()
    made = run("init", "--data", "customers.csv", "--target", "churned", "-o", "specs/d.yaml", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert yaml.safe_load((tmp_path / "specs" / "d.yaml").read_text())["data"]["path"] == "../customers.csv"
    from driftloop.spec import load_spec

    spec = load_spec(str(tmp_path / "specs" / "d.yaml"))  # from any working directory: next to the spec file
    assert spec.data.path == str((tmp_path / "customers.csv").resolve())


def test_example_is_deterministic_and_has_drift_knobs(tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv"):
        assert run("example", "-o", name, "--rows", "300", cwd=tmp_path).returncode == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    base = customers(rows=4000)
    shifted = customers(rows=4000, drift=DriftKnobs(mean_shift={"tenure_months": 1.0}, plan_mix=(0.1, 0.1, 0.8),
                                                    label_shift=1.0))
    assert shifted["tenure_months"].mean() - base["tenure_months"].mean() > 10
    assert (shifted["plan"] == "pro").mean() > 0.7 > (base["plan"] == "pro").mean()
    assert shifted["churned"].mean() > base["churned"].mean() + 0.1
    bad = run("example", "-o", "c.csv", "--shift", "plan=1", cwd=tmp_path)
    assert bad.returncode == 2 and "not a numeric column" in bad.stderr
    # the column by its own name (the knob's short name still works); mistakes are one line, not a traceback
    import pandas as pd

    assert run("example", "-o", "d.csv", "--rows", "2000", "--shift", "customer_age=2", cwd=tmp_path).returncode == 0
    assert pd.read_csv(tmp_path / "d.csv")["customer_age"].mean() > customers(rows=2000)["customer_age"].mean() + 15
    for args, words in ((["--shift", "age=abc"], "--shift age: 'abc' is not a number"),
                        (["--plan-mix=-0.5,0.5,1"], "three probabilities (0 to 1)"),
                        (["--name", "house_prices", "--shift", "age=3"], "drift the customers example only")):
        refused = run("example", "-o", "e.csv", *args, cwd=tmp_path)
        assert refused.returncode == 2 and words in refused.stderr and "Traceback" not in refused.stderr, args


def test_a_closed_pipe_ends_quietly_and_a_bad_output_is_a_usage_error(tmp_path: Path) -> None:
    """Every exception that is not driftloop's is one line now; a reader that stops early (`| head`) is not one,
    as click has it; and `compile -o -` was an internal ValueError from KFP's compiler."""
    driftloop = " ".join([sys.executable, "-m", "driftloop"])
    piped = subprocess.run(f"{driftloop} example -o - --rows 200000 | head -1", shell=True, cwd=tmp_path,
                           capture_output=True, text=True)
    assert piped.stdout.startswith("customer_age,tenure_months,") and piped.stdout.count("\n") == 1
    assert "error" not in piped.stderr and "Traceback" not in piped.stderr, piped.stderr
    refused = run("compile", "-o", "-", cwd=tmp_path)
    assert refused.returncode == 2 and "Invalid value for -o: '-': the pipeline is written as a .yaml" in refused.stderr


def test_a_new_local_store_prints_nothing_of_mlflows_own(tmp_path: Path) -> None:
    """MLflow logs "Creating initial MLflow database tables..." at INFO as it makes a new SQLite store; importing
    mlflow sets its logger to INFO, so a level set before the import was lost and those lines passed `-q`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    user = Cli(tmp_path, env | {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'fresh.db'}"})
    done = user("models")
    assert done.returncode == 0 and "no registered models yet" in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == ["no registered models yet; run `driftloop run` first"], done.stderr


def test_models_lists_every_page_and_a_bad_name_or_a_database_store_is_said_plainly(tmp_path: Path) -> None:
    """MLflow answers 100 registered models a page: the rest were dropped without a word. A name MLflow refuses was
    an internal error; `ui` told a user to open postgresql://user:password@… in a browser, password and all."""
    from mlflow import MlflowClient

    store = f"sqlite:///{tmp_path / 'many.db'}"
    client = MlflowClient(store)
    for i in range(105):
        client.create_registered_model(f"m{i:03d}")
    client.create_registered_model("Fraud Model")  # MLflow takes names driftloop would not make; listed all the same
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    user = Cli(tmp_path, env | {"MLFLOW_TRACKING_URI": store})
    listed = user("models", "--json", "-")
    assert listed.returncode == 0, listed.stderr
    assert sorted(json.loads(listed.stdout)) == ["Fraud Model"] + [f"m{i:03d}" for i in range(105)]
    bad = user("models", "--model", "a/b")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "error: model name 'a/b' is not valid: use letters, digits, '.', '_' or '-'"]
    misspelt = user("models", "--model", "m1000")
    assert misspelt.returncode == 1 and "registered model 'm1000' not found" in misspelt.stderr
    from driftloop.cli import _without_password

    assert _without_password("postgresql://ml:s3/cr+t@db:5432/mlflow") == "postgresql://ml:***@db:5432/mlflow"
    assert _without_password("postgresql://db/mlflow?password=s3cret") == "postgresql://db/mlflow?password=***"
    assert _without_password("postgresql://ml@db/mlflow") == "postgresql://ml@db/mlflow"
    remote = Cli(tmp_path, env | {"MLFLOW_TRACKING_URI": "https://ml:s3cret@mlflow.example"})("ui")
    assert remote.returncode == 0 and "s3cret" not in remote.stderr and "https://ml:***@mlflow.example" in remote.stderr


def test_an_output_file_that_cannot_be_written_is_refused_before_any_work(tmp_path: Path) -> None:
    """It was a traceback after the run (a deployed model's run then exited 1, its own error line never printed),
    and a drift result's exit code 3 became 1."""
    (tmp_path / "t.csv").write_text("x,y\n1,0\n2,1\n")
    (tmp_path / "adir").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    user = Cli(tmp_path, env | {"MLFLOW_TRACKING_URI": "http://127.0.0.1:9"})  # never reached: refused before
    cases = [(["run", "--data", "t.csv", "--target", "y", "--json", "nodir/x.json"],
              "error: --json nodir/x.json: directory nodir does not exist"),
             (["run", "--data", "t.csv", "--target", "y", "--json", "adir"], "error: --json adir: is a directory"),
             (["drift", "--reference", "t.csv", "--current", "t.csv", "--no-track", "--report", "nodir/r.html"],
              "error: --report nodir/r.html: directory nodir does not exist"),
             (["drift", "--reference", "t.csv", "--current", "t.csv", "--no-track", "--summary", "adir"],
              "error: --summary adir: is a directory"),
             (["models", "--json", "adir"], "error: --json adir: is a directory")]
    for args, line in cases:
        done = user(*args, timeout=60)
        assert done.returncode == 2 and done.stderr.strip().splitlines() == [line + (
            "; give a file name" if "is a directory" in line else "")], (args, done.stderr)


def test_an_existing_file_in_a_directory_the_user_cannot_write_is_writable_output() -> None:
    """The operator's pods run as uid 10001 and write `--json /dev/termination-log`: /dev is root's, the file is
    theirs. Checked as an unprivileged user (root passes every access check)."""
    import shutil

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the check as another user")
    import tempfile

    locked = Path(tempfile.mkdtemp(prefix="driftloop-locked-"))  # outside pytest's own 0700 directory
    (locked / "termination-log").write_text("")
    (locked / "termination-log").chmod(0o666)
    locked.chmod(0o755)
    code = ("import sys; from driftloop.console import check_writable; from driftloop.errors import UsageError\n"
            "for path in sys.argv[1:]:\n"
            "    try: check_writable(path, '--json'); print('ok')\n"
            "    except UsageError as e: print(e)\n")
    done = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code,
                           str(locked / "termination-log"), str(locked / "new.json"), "/dev/null"],
                          capture_output=True, text=True, env={"PYTHONPATH": str(Path(__file__).parent.parent),
                                                               "PATH": "/usr/bin:/bin"}, cwd="/")
    assert done.stdout.splitlines() == ["ok", f"--json {locked / 'new.json'}: directory {locked} is not writable",
                                        "ok"], done.stdout + done.stderr

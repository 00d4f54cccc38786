"""Every bad input: one clear line, a non-zero exit, and the champion left alone."""

from __future__ import annotations

import pytest

from driftloop.example import customers

from .conftest import S3, Cli, cli_env, free_port, registry_for

pytestmark = pytest.mark.slow

MODEL = "guarded"
FAST = ["--set", "train.epochs=5", "--set", "evaluate.latency_samples=20"]


@pytest.fixture(scope="module")
def champion(tmp_path_factory: pytest.TempPathFactory, mlflow_uri: str, s3: S3) -> str:
    """A model with a champion (and its stored suite) that every bad run must leave alone."""
    cwd = tmp_path_factory.mktemp("guarded")
    customers(rows=800).to_csv(cwd / "good.csv", index=False)
    proc = Cli(cwd, cli_env(mlflow_uri, s3))("run", "--data", "good.csv", "--target", "churned", "--model", MODEL,
                         "--set", "train.epochs=30", "--json", "-")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"deployed": true' in proc.stdout, proc.stdout
    return registry_for(mlflow_uri).champion(MODEL).version


def write(cli: Cli, name: str, frame) -> str:
    frame.to_csv(cli.cwd / name, index=False)
    return name


def with_text_in_age(frame):
    frame = frame.astype({"customer_age": object})
    frame.loc[7, "customer_age"] = "forty"
    return frame


def age_as_words(frame):
    return frame.assign(customer_age=["young" if a < 40 else "old" for a in frame["customer_age"]])


CASES = {
    "missing file": (lambda cli: ["--data", "nope.csv", "--target", "churned"], 1, "nope.csv: file not found"),
    "missing target": (lambda cli: ["--data", write(cli, "d.csv", customers(rows=200)), "--target", "churn"], 1,
                       "target column 'churn' not found; did you mean 'churned'?"),
    "header only": (lambda cli: ["--data", write(cli, "d.csv", customers(rows=200).head(0)), "--target", "churned"],
                    1, "the table has a header but no rows"),
    "empty file": (lambda cli: ["--data", _empty(cli), "--target", "churned"], 1, "the table is empty"),
    "all-null column": (lambda cli: ["--data", write(cli, "d.csv", customers(rows=200).assign(region=None)),
                                     "--target", "churned"], 1, "column 'region' is entirely null"),
    "text in numeric column": (lambda cli: ["--data", write(cli, "d.csv", with_text_in_age(customers(rows=200))),
                                            "--target", "churned"], 1,
                               "column 'customer_age': text in a numeric column: 'forty'"),
    "type differs from stored suite": (lambda cli: ["--data", write(cli, "d.csv", age_as_words(customers(rows=200))),
                                                    "--target", "churned"], 1,
                                       "column 'customer_age': text in a numeric column: 'old'"),
    # a new category is a warning; strict validation makes it the error it was
    "category outside stored suite, strict": (lambda cli: ["--data", write(cli, "d.csv", customers(rows=200)
                                                                          .assign(plan="gold")), "--target", "churned",
                                                           "--set", "validation.strict=true"], 1,
                                      "column 'plan': expect_column_values_to_be_in_set"),
    "single-class target": (lambda cli: ["--data", write(cli, "d.csv", customers(rows=200).assign(churned=0)),
                                         "--target", "churned"], 1,
                            "d.csv: target 'churned' has a single class (0); classification needs at least two"),
    "duplicate column names": (lambda cli: ["--data", _duplicated(cli), "--target", "churned"], 1,
                               "dup.csv: column name 'plan' appears more than once; each column needs its own name"),
    "unknown spec key": (lambda cli: ["--data", "x.csv", "--target", "churned", "--set", "train.epocs=3"], 2,
                         "--set train.epocs: unknown key; did you mean 'epochs'?"),
    "wrong spec type": (lambda cli: ["--data", "x.csv", "--target", "churned", "--set", "train.lr=fast"], 2,
                        "train.lr: Input should be a valid number"),
}


def _duplicated(cli: Cli) -> str:
    """A header that names `plan` twice; pandas alone would read the second as `plan.1`."""
    frame = customers(rows=200)
    frame.insert(1, "plan.1", frame["plan"])
    text = frame.to_csv(index=False).replace("plan.1", "plan", 1)
    (cli.cwd / "dup.csv").write_text(text)
    return "dup.csv"


def _empty(cli: Cli) -> str:
    (cli.cwd / "empty.csv").write_text("")
    return "empty.csv"


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_one_line_nothing_promoted(case: str, cli: Cli, champion: str, mlflow_uri: str) -> None:
    build, code, message = CASES[case]
    proc = cli("run", "--model", MODEL, *FAST, *build(cli))
    assert proc.returncode == code, proc.stderr[-2000:]
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    assert message in errors[0]
    assert "Traceback" not in proc.stderr
    registry = registry_for(mlflow_uri)
    assert registry.champion(MODEL).version == champion
    assert [v["version"] for v in registry.versions(MODEL)] == [champion]


def test_single_class_target_without_a_stored_suite(cli: Cli) -> None:
    write(cli, "one.csv", customers(rows=200).assign(churned=1))
    proc = cli("run", "--data", "one.csv", "--target", "churned", *FAST)
    assert proc.returncode == 1
    assert "error: one.csv: target 'churned' has a single class (1)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_s3_object(cli: Cli, s3: S3, champion: str, mlflow_uri: str) -> None:
    s3.client().create_bucket(Bucket="empty-bucket")
    proc = cli("run", "--model", MODEL, "--data", "s3://empty-bucket/none.csv", "--target", "churned")
    assert proc.returncode == 1
    assert "error: s3://empty-bucket/none.csv: cannot read S3 object (NoSuchKey)" in proc.stderr
    assert registry_for(mlflow_uri).champion(MODEL).version == champion


def test_unreachable_mlflow_names_the_uri(cli: Cli) -> None:
    write(cli, "d.csv", customers(rows=100))
    dead = f"http://127.0.0.1:{free_port()}"
    cli.env = cli.env | {"MLFLOW_TRACKING_URI": dead, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"}
    proc = cli("run", "--data", "d.csv", "--target", "churned")
    assert proc.returncode == 1
    assert f"error: MLflow tracking server unreachable at {dead}" in proc.stderr
    assert "Traceback" not in proc.stderr

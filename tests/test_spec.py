"""The spec model: defaults, overrides, and one clear line for every mistake."""

from pathlib import Path

import pytest

from driftloop.errors import InvalidSpec
from driftloop.spec import Spec, default_model_name, load_spec


def test_only_data_and_target_are_required() -> None:
    spec = load_spec(data="s3://bucket/in/customers.csv", target="churned")
    assert spec.model_name == "customers"
    assert spec.train.epochs == 50 and spec.data.task == "auto"


def test_override_sets_typed_values() -> None:
    spec = load_spec(data="a.csv", target="y", overrides=["train.epochs=7", "train.hidden_sizes=[8, 4]",
                                                          "gate.min.accuracy=0.8"])
    assert spec.train.epochs == 7 and spec.train.hidden_sizes == [8, 4] and spec.gate.min == {"accuracy": 0.8}


@pytest.mark.parametrize(("overrides", "message"), [
    (["train.epocs=3"], "train.epocs: unknown key; did you mean 'epochs'?"),
    (["trian.epochs=3"], "trian: unknown key; did you mean 'train'?"),
    (["train.epochs=many"], "train.epochs: Input should be a valid integer"),
    (["train.device=tpu"], "train.device: Input should be 'auto', 'cpu' or 'cuda'"),
    (["gate.min.acuracy=0.9"], "unknown metric 'acuracy'; did you mean 'accuracy'?"),
    (["train.epochs"], "expected KEY=VALUE"),
    (["feature.roles={bad"], "--set feature.roles: not valid YAML: expected ',' or '}'"),  # was a PyYAML traceback
])
def test_bad_overrides_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(InvalidSpec, match=message.replace("?", r"\?").replace("(", r"\(").replace(")", r"\)")):
        load_spec(data="a.csv", target="y", overrides=overrides)


def test_bad_file_names_the_path_and_nearest_key(tmp_path: Path) -> None:
    path = tmp_path / "driftloop.yaml"
    path.write_text("data: {path: a.csv, target: y}\nfeature:\n  scalling: standard\n")
    with pytest.raises(InvalidSpec) as raised:
        load_spec(str(path))
    assert str(raised.value) == f"{path}: feature.scalling: unknown key; did you mean 'scaling'?"
    path.write_text("data: {path: a.csv}\n")
    with pytest.raises(InvalidSpec, match="data.target: required key is missing"):
        load_spec(str(path))


def test_a_spec_file_that_is_not_yaml_or_not_utf8_is_one_line_with_where(tmp_path: Path) -> None:
    path = tmp_path / "driftloop.yaml"
    path.write_text("data:\n  path: a.csv\n  target: y\ntrain:\n epochs: 3\n  lr: 1\n")
    with pytest.raises(InvalidSpec) as raised:
        load_spec(str(path))
    assert str(raised.value) == f"{path}:6:5: not valid YAML: mapping values are not allowed here"
    path.write_bytes("data: {path: données.csv, target: y}\n".encode("cp1252"))  # saved by a Windows editor
    with pytest.raises(InvalidSpec, match=r"not UTF-8 text \(byte 17\); save the spec file as UTF-8"):
        load_spec(str(path))


def test_yaml_round_trip_is_lossless() -> None:
    import yaml

    spec = load_spec(data="a.csv", target="y", overrides=["train.lr=0.01"])
    again = Spec.model_validate(yaml.safe_load(spec.to_yaml()))
    assert again == spec and again.digest() == spec.digest()


def test_the_spec_yaml_dumped_by_section_and_remembered_is_the_whole_dump() -> None:
    import yaml

    specs = [load_spec(data=f"{name}.csv", target="y", overrides=overrides)
             for name, overrides in (("a", []), ("b", ["train.lr=0.01"]), ("a", []), ("c", ["train.epochs=3"]))]
    for spec in specs:  # the third repeats the first: its sections come from memory
        whole = yaml.dump(spec.model_dump(mode="json"), Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper),
                          sort_keys=False)
        assert spec.to_yaml() == whole


def test_model_name_from_file_name() -> None:
    assert default_model_name("data/churn.parquet") == "churn"


def test_a_relative_data_path_in_a_spec_file_is_next_to_the_spec(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    spec_file = tmp_path / "conf" / "d.yaml"
    spec_file.write_text("data: {path: ../data/t.csv, target: y}\n")
    assert load_spec(str(spec_file)).data.path == str((tmp_path / "data" / "t.csv").resolve())
    spec_file.write_text("data: {path: s3://b/t.csv, target: y}\n")
    assert load_spec(str(spec_file)).data.path == "s3://b/t.csv"
    assert load_spec(str(spec_file), data="here.csv").data.path == "here.csv"  # --data is the shell's: as typed


def test_the_bundled_example_spec_finds_its_table_from_anywhere(tmp_path, monkeypatch) -> None:
    """`make run`'s spec: its data path is relative to the spec file, whatever the working directory."""
    from .conftest import REPO

    monkeypatch.chdir(tmp_path)
    spec = load_spec(str(REPO / "examples" / "customers.yaml"))
    assert spec.data.path == str(REPO / "examples" / "data" / "customers.csv")


def test_a_data_file_named_two_ways_is_one_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--data customers.csv` and the spec `init` wrote for it hashed apart, so rerunning one after the other
    trained and registered a second, identical version."""
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "d.yaml").write_text("data: {path: ../customers.csv, target: churned}\n")
    monkeypatch.chdir(tmp_path)
    by_flag = load_spec(data="customers.csv", target="churned")
    by_file = load_spec(str(tmp_path / "specs" / "d.yaml"))
    assert by_flag.data.path != by_file.data.path and by_flag.digest() == by_file.digest()
    assert load_spec(data="other.csv", target="churned").digest() != by_flag.digest()

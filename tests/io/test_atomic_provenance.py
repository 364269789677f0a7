import json

import pytest

from personpose.io.atomic import atomic_write, atomic_write_json
from personpose.io.provenance import REDACTED, redact, scrub_file, versions


def test_atomic_write_json_roundtrip_and_no_temp_left(tmp_path):
    path = atomic_write_json(tmp_path / "sub" / "r.json", {"a": 1, "b": [1.5, "x"]})
    assert json.loads(path.read_text()) == {"a": 1, "b": [1.5, "x"]}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_atomic_write_keeps_old_file_when_writer_fails(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")

    def boom(p):
        p.write_text("half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic_write(target, boom)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_atomic_files_get_the_usual_permissions(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    path = atomic_write_json(tmp_path / "r.json", {"a": 1})
    assert path.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 != 0o600


def test_nan_is_never_written_to_json(tmp_path):
    with pytest.raises(ValueError, match="JSON compliant"):
        atomic_write_json(tmp_path / "r.json", {"mask_ssim": float("nan")})
    assert list(tmp_path.iterdir()) == []


def test_redact_nested_secret_keys():
    cfg = {
        "logger": {"wandb": {"api_key": "abc123", "project": "p"}},
        "token": None,
        "list": [{"HF_TOKEN": "t"}],
        "password_hint": "",
    }
    out = redact(cfg)
    assert out["logger"]["wandb"] == {"api_key": REDACTED, "project": "p"}
    assert out["token"] is None  # nothing to hide
    assert out["list"][0]["HF_TOKEN"] == REDACTED
    assert "abc123" not in json.dumps(out)


def test_scrub_file_redacts_yaml_and_override_lines(tmp_path):
    f = tmp_path / "overrides.yaml"
    f.write_text("- seed=1\n- +logger.wandb.api_key=sekret\nwandb_token: xyz\nproject: p\n")
    scrub_file(f)
    text = f.read_text()
    assert "sekret" not in text and "xyz" not in text
    assert "- seed=1" in text and "project: p" in text


def test_versions_names_packages():
    v = versions()
    assert v["torch"] and v["python"] and "git_commit" in v

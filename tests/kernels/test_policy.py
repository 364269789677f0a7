import pytest

from personpose.kernels.policy import EnvPolicy


def test_env_values_aliases_and_nested_overrides(monkeypatch):
    p = EnvPolicy("PERSONPOSE_TEST_POLICY", ("auto", "always", "never"), "always", "test_mode")
    monkeypatch.delenv("PERSONPOSE_TEST_POLICY", raising=False)
    assert p.current() == "auto"
    for value, mode in (("ON", "always"), ("0", "never"), (" never ", "never"), ("", "auto")):
        monkeypatch.setenv("PERSONPOSE_TEST_POLICY", value)
        assert p.current() == mode
    with p.override("always"):
        with p.override("auto"):
            assert p.current() == "auto"
        assert p.current() == "always"
    assert p.current() == "auto"  # the env's "" again


def test_bad_values_name_the_variable_or_the_switch(monkeypatch):
    p = EnvPolicy("PERSONPOSE_TEST_POLICY", ("auto", "never"), "auto", "test_mode")
    monkeypatch.setenv("PERSONPOSE_TEST_POLICY", "sometimes")
    with pytest.raises(ValueError, match=r"PERSONPOSE_TEST_POLICY='sometimes': expected one of"):
        p.current()
    with pytest.raises(ValueError, match="test_mode: expected one of"):
        with p.override("always"):
            pass

"""`altmarl federated`: bad inputs are one line each and nothing runs (no Flower needed for these)."""

from __future__ import annotations

from pathlib import Path

import pytest

from altmarl_ros.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("extra", "message"), [
    (["--k", "200"], "--k = 200 must satisfy 1 <= k <= n = 100"),
    (["--n", "20", "--ks", "1,50"], "--ks: k = 50 exceeds n = 20"),
    (["--dataset", "mnist"], "unknown dataset 'mnist'; known datasets: ['digits']"),
    (["--game", str(ROOT / "config/games/federated.yaml")], "a plain game file, not a participation game"),
    (["--game", "/nonexistent/game.yaml"], "cannot read"),
    (["--n", "1000"], "1000 clients need 2000 shards"),
])
def test_bad_inputs_are_one_line(extra: list[str], message: str, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["federated", "--out", str(tmp_path / "out"), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert err.startswith("altmarl federated: error:")
    assert not (tmp_path / "out").exists()  # nothing ran, nothing written


def test_bad_game_file_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (ROOT / "config/games/federated_participation.yaml").read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace("  offline: {'*': {offline: 0.7, low_loss: 0.15, high_loss: 0.15}}\n  low_loss: {'*'",
                                "  offline: {'*': {offline: 0.7, low_loss: 0.15}}\n  low_loss: {'*'", 1))
    assert bad.read_text() != text
    assert main(["federated", "--out", str(tmp_path / "o"), "--game", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "unpolled" in err and "sums to 0.85, not 1" in err and "\n" not in err

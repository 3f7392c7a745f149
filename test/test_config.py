"""Training configs: every shipped YAML loads; bad ones fail naming the key."""

from pathlib import Path

import pytest

from altmarl_ros.marl.config import ConfigError, config_from_dict, load_train_config

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"


TABULAR = [p for p in sorted(CONFIG_DIR.glob("train_*.yaml")) if "kind: continuous" not in p.read_text()]


@pytest.mark.parametrize("path", TABULAR, ids=lambda p: p.name)  # continuous configs: test_continuous_train
def test_shipped_configs_load(path):
    config = load_train_config(path)
    assert config.n_agents == 1000 and config.evaluation.horizon in (50, 100)


def test_the_paper_and_authors_configs_differ_where_they_should():
    paper = load_train_config(CONFIG_DIR / "train_warehouse.yaml")
    authors = load_train_config(CONFIG_DIR / "train_warehouse_authors.yaml")
    assert (paper.g_learn.transition, paper.g_learn.m, paper.l_learn.kind, paper.loop.rule, paper.ordering) == (
        "sampled", 30, "induced", "two_eta", "paper")
    assert (authors.g_learn.transition, authors.g_learn.stopping, authors.l_learn.kind, authors.loop.rule,
            authors.ordering) == ("deterministic", "fixed", "authors", "revert", "authors")
    assert load_train_config(CONFIG_DIR / "train_warehouse_rg_distance.yaml").game_options == {"r_g": "distance"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"colour": "red"}, "colour: unknown key"),
        ({"g_learn": {"mm": 3}}, r"g_learn\.mm: unknown key"),
        ({"g_learn": {"m": 0}}, r"g_learn\.m: must be >= 1"),
        ({"g_learn": {"m": "thirty"}}, r"g_learn\.m: must be an integer"),
        ({"g_learn": {"transition": "magic"}}, r"g_learn\.transition"),
        ({"loop": {"rule": "vote"}}, r"loop\.rule"),
        ({"loop": {"c": -1}}, r"loop\.c"),
        ({"k": 5000}, "k: must satisfy"),
        ({"ordering": "random"}, "ordering"),
        ({"game": "chess"}, "unknown game"),
        ({"game_options": {"r_g": "huge"}}, "game_options"),
        ({"g_learn": {"warm_start": "yes"}}, r"warm_start: must be true or false"),
        ({"evaluation": 5}, "evaluation: expected a mapping"),
        ({"loop": {"select_episodes": 1}}, r"loop\.select_episodes: must be 0 \(eval_episodes\) or >= 2"),
        ({"loop": {"oracle_max_k": -1}}, r"loop\.oracle_max_k: must be >= 0"),
        ({"loop": {"oracle_max_k": 1.5}}, r"loop\.oracle_max_k: must be an integer"),
        ({"loop": {"refine_from": "all"}}, r"loop\.refine_from: must be one of \('best', 'tied'\)"),
        ({"loop": {"posterior_only_from_k": -1}}, r"loop\.posterior_only_from_k: must be >= 0"),
        ({"loop": {"posterior_only_from_k": "big"}}, r"loop\.posterior_only_from_k: must be an integer"),
    ],
)
def test_bad_values_name_the_key(data, message):
    with pytest.raises(ConfigError, match=message):
        config_from_dict(data)


def test_bad_files_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("g_learn: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*not valid YAML"):
        load_train_config(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_train_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_train_config(tmp_path / "missing.yaml")

"""run's first-class matrix flags become config overrides; contradictions and bad values are one line."""

import argparse

import pytest

from harness.commands.matrix_flags import add_matrix_flags, flag_overrides
from harness.config import load_config, parse_override
from harness.errors import HarnessError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    add_matrix_flags(parser)
    return parser.parse_args(argv)


def test_flags_set_the_matrix_and_slo_in_the_config():
    args = parse("--prompt-lengths", "16, 64", "--max-new-tokens", "8", "--concurrency", "1,2",
                 "--request-rate", "0.5,2", "--repetitions", "7", "--slo", "ttft=300ms,e2el=2s")
    config = load_config("quick", dict(parse_override(text) for text in flag_overrides(args)))
    assert config.matrix.prompt_lengths == (16, 64) and config.matrix.max_new_tokens == 8
    assert config.matrix.concurrency == (1, 2) and config.matrix.arrival_rates == (0.5, 2.0)
    assert config.matrix.repetitions == 7
    assert config.slo.limits() == {"ttft": 0.3, "e2el": 2.0}


@pytest.mark.parametrize("argv, words", [
    (("--prompt-lengths", "16,abc"), "not an integer"),
    (("--max-new-tokens", "4,8"), "one number"),
    (("--request-rate", "nan"), "finite number > 0"),
    (("--concurrency", "0"), "finite number > 0"),
    (("--repetitions", ""), "one number"),
    (("--slo", "ttft=fast"), "not a duration"),
    (("--max-new-tokens", "8", "--set", "matrix.max_new_tokens=16"), "set twice"),
])
def test_bad_or_contradictory_flags_are_one_line_errors(argv, words):
    with pytest.raises(HarnessError) as error:
        flag_overrides(parse(*argv))
    assert words in str(error.value) and "\n" not in str(error.value)


def test_slo_values_in_a_config_must_be_positive(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text("[slo]\nttft_s = -1.0\n", encoding="utf-8")
    with pytest.raises(HarnessError, match="slo.ttft_s"):
        load_config(path)

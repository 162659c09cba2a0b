"""Request validation and stop strings of `serve`, without a server: every field's rule, one by one."""

from __future__ import annotations

import json

import pytest

from harness.serve.api_error import ApiError
from harness.serve.schemas import parse_chat_request
from harness.serve.stops import StopMatcher

USER = [{"role": "user", "content": "hi"}]


def parse(**fields: object):
    return parse_chat_request(json.dumps({"messages": USER, **fields}).encode())


def refusal(body: bytes) -> ApiError:
    with pytest.raises(ApiError) as caught:
        parse_chat_request(body)
    return caught.value


def test_defaults_follow_openai_temperature_one_and_no_token_cap() -> None:
    params = parse()
    assert params.messages == (("user", "hi"),)
    assert (params.temperature, params.top_p, params.max_tokens, params.stream, params.greedy) == (1.0, 1.0, None, False, False)


def test_temperature_zero_is_greedy() -> None:
    assert parse(temperature=0).greedy and not parse(temperature=0.7).greedy


def test_max_completion_tokens_wins_over_max_tokens() -> None:
    assert parse(max_tokens=5, max_completion_tokens=7).max_tokens == 7
    assert parse(max_tokens=5).max_tokens == 5


def test_include_usage_counts_only_when_streaming() -> None:
    assert parse(stream=True, stream_options={"include_usage": True}).include_usage
    assert not parse(stream=False, stream_options={"include_usage": True}).include_usage


def test_continuous_usage_needs_include_usage_and_a_stream() -> None:
    both = {"include_usage": True, "continuous_usage_stats": True}
    assert parse(stream=True, stream_options=both).continuous_usage
    assert not parse(stream=True, stream_options={"continuous_usage_stats": True}).continuous_usage
    assert not parse(stream=False, stream_options=both).continuous_usage


def test_content_parts_join_and_developer_is_system() -> None:
    params = parse_chat_request(json.dumps({"messages": [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
    ]}).encode())
    assert params.messages == (("system", "be brief"), ("user", "ab"))


def test_stop_takes_a_string_or_a_list() -> None:
    assert parse(stop="\n").stop == ("\n",)
    assert parse(stop=["a", "b"]).stop == ("a", "b")
    assert parse(stop=None).stop == ()


def test_negative_seed_maps_to_a_valid_repeatable_seed() -> None:
    assert parse(seed=-1).seed == 2**64 - 1
    assert parse(seed=42).seed == 42


def test_unknown_fields_from_load_tools_are_ignored_and_ignore_eos_is_read() -> None:
    params = parse(min_tokens=3, user="x", ignore_eos=True, stream=True,
                   stream_options={"include_usage": True, "continuous_usage_stats": True})
    assert params.ignore_eos and params.include_usage


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": "8"}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_completion_tokens": -3}, "max_completion_tokens"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": -2}, "top_k"),
        ({"seed": 2**64}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": [""]}, "stop"),
        ({"stop": 3}, "stop"),
        ({"stream": "yes"}, "stream"),
        ({"stream_options": []}, "stream_options"),
        ({"model": 3}, "model"),
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"tools": [{"type": "function"}]}, "tools"),
        ({"presence_penalty": 0.5}, "presence_penalty"),
        ({"response_format": {"type": "json_object"}}, "response_format"),
    ],
)
def test_a_bad_field_is_a_400_naming_it(fields: dict, param: str) -> None:
    error = refusal(json.dumps({"messages": USER, **fields}).encode())
    assert error.status == 400 and error.param == param and param in error.message


def test_neutral_values_of_unsupported_features_pass() -> None:
    parse(n=1, logprobs=False, tools=[], presence_penalty=0, frequency_penalty=0.0, response_format={"type": "text"})


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([], "messages"),
        ("hi", "messages"),
        (["hi"], "messages[0]"),
        ([{"role": "tool", "content": "x"}], "messages[0].role"),
        ([{"role": "user", "content": 3}], "messages[0].content"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], "messages[0].content"),
    ],
)
def test_bad_messages_are_a_400_naming_the_message(messages: object, param: str) -> None:
    error = refusal(json.dumps({"messages": messages}).encode())
    assert (error.status, error.param) == (400, param)


@pytest.mark.parametrize("body", [b"{bad", b"[1, 2]", b"\xff\xfe", b'{"messages": NaN}', b""])
def test_a_body_that_is_not_a_json_object_is_a_400(body: bytes) -> None:
    error = refusal(body)
    assert error.status == 400 and error.code == "invalid_json"


def test_error_body_has_openai_shape() -> None:
    body = json.loads(refusal(b"{bad").json_bytes())
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == "invalid_request_error"


# -- stop strings ---------------------------------------------------------------------------------


def feed_all(matcher: StopMatcher, deltas: list[str]) -> str:
    return "".join(matcher.feed(d) for d in deltas) + matcher.flush()


def test_stop_string_split_across_deltas_is_cut_and_not_sent() -> None:
    matcher = StopMatcher(["END"])
    assert feed_all(matcher, ["abc E", "N", "D tail"]) == "abc "
    assert matcher.stopped


def test_a_partial_stop_is_held_then_released_when_it_does_not_complete() -> None:
    matcher = StopMatcher(["END"])
    assert matcher.feed("abc EN") == "abc "
    assert matcher.feed("x") == "ENx"
    assert feed_all(StopMatcher(["END"]), ["ab", "E"]) == "abE" and not matcher.stopped


def test_earliest_of_several_stops_wins() -> None:
    assert feed_all(StopMatcher(["zz", "b"]), ["a b zz"]) == "a "


def test_no_stops_passes_text_through_untouched() -> None:
    matcher = StopMatcher([])
    assert matcher.feed("E") == "E" and matcher.flush() == ""

"""Real responses and token counting on hand-made records and counts."""

from __future__ import annotations

from harness.judge.evidence import TokenCount
from judge_helpers import frame, judge, rec

PROMPTS = ["What is the capital of France?", "Why is the sky blue?", "What do bees make?"]


def responses(*texts: str, **changes):
    return frame(*[rec(i, test="real_responses", case_id="cpu-responses", output_text=t, **changes)
                   for i, t in enumerate(texts)])


GOOD = responses("Paris is the capital.", "Light scatters in air.", "Bees make honey.")


def test_distinct_decoded_answers_equal_to_the_reference_pass() -> None:
    verdict = judge("real_responses", GOOD, decodes=True, matches_reference=True, prompts=PROMPTS,
                    reference_note="greedy output equals onnxruntime-genai's")
    assert verdict.verdict == "pass" and verdict.measured == "3/3 distinct" and verdict.samples == 3
    assert verdict.reason == "greedy output equals onnxruntime-genai's" and verdict.case == "cpu-responses"
    plain = judge("real_responses", GOOD, decodes=True, matches_reference=True)
    assert plain.reason == "distinct, decodable, equal to the reference"


def test_without_the_reference_comparison_it_is_a_partial_pass_in_words_and_data() -> None:
    verdict = judge("real_responses", GOOD, decodes=True, reference_note="reference comparison skipped: no genai")
    assert verdict.verdict == "pass (partial)"
    assert verdict.reason == "not run: reference comparison (reference comparison skipped: no genai)"
    both = judge("real_responses", GOOD)
    assert both.verdict == "pass (partial)" and both.reason == "not run: decoding check, reference comparison"


def test_repeated_empty_and_placeholder_answers_fail() -> None:
    same = judge("real_responses", responses("hi there", "hi there"), decodes=True, matches_reference=True)
    assert same.verdict == "fail" and same.reason == "1 output(s) repeat another prompt's output"
    assert same.measured == "1/2 distinct"
    empty = judge("real_responses", responses(" ", "x y"), decodes=True, matches_reference=True)
    assert empty.verdict == "fail" and empty.reason == "1 empty output(s)"
    stub = judge("real_responses", responses("a stub reply", "Lorem  ipsum"), decodes=True, matches_reference=True)
    assert stub.verdict == "fail"
    assert stub.reason == ("placeholder text #0: dummy/stub/mock/fake text ('stub reply'); "
                           "#1: lorem ipsum ('Lorem  ipsum')")


def test_an_answer_that_echoes_its_prompt_fails() -> None:
    echo = responses("What is the capital of France? It is", "Light.", "Honey.")
    verdict = judge("real_responses", echo, decodes=True, matches_reference=True, prompts=PROMPTS)
    assert verdict.verdict == "fail" and verdict.reason == "placeholder text #0: echo of the prompt"


def test_undecodable_or_different_from_reference_fails() -> None:
    verdict = judge("real_responses", GOOD, decodes=False, matches_reference=False)
    assert verdict.verdict == "fail"
    assert verdict.reason == ("output text differs from the decoded generated ids; "
                              "greedy output differs from the reference engine's")


def test_one_response_is_inconclusive_none_skips_and_failures_fail() -> None:
    one = judge("real_responses", responses("Paris."), decodes=True, matches_reference=True)
    assert one.verdict == "inconclusive" and one.reason == "1 responses to distinct prompts, need >= 2"
    none = judge("real_responses", frame(rec(0)))
    assert none.verdict == "skip" and none.reason == "no responses to distinct prompts were recorded"
    broken = frame(rec(0, test="real_responses"), rec(1, test="real_responses", ok=False, error_kind="http_500",
                                                        error="oops"))
    failed = judge("real_responses", broken)
    assert failed.verdict == "fail" and failed.reason == "1 of 2 requests failed (http_500: oops)"


def count(case: str = "cpu-responses#0", prompt=(9, 9), completion=(4, 4), note: str = "") -> TokenCount:
    return TokenCount(case, prompt[0], prompt[1], completion[0], completion[1], note)


def test_token_counts_equal_to_the_independent_ones_pass() -> None:
    counts = [count(f"c#{i}", note="re-tokenized output text") for i in range(3)]
    verdict = judge("token_counting", token_counts=counts)
    assert verdict.verdict == "pass" and verdict.measured == "3 compared" and verdict.samples == 3
    assert verdict.reason == "3 requests match the independent counts (re-tokenized output text)"
    assert judge("token_counting", token_counts=[count() for _ in range(3)]).reason == (
        "3 requests match the independent counts")


def test_a_wrong_prompt_or_completion_count_fails() -> None:
    prompt = judge("token_counting", token_counts=[count("http#1", prompt=(8, 9)), count(), count()])
    assert prompt.verdict == "fail" and prompt.measured == "1 mismatch(es)"
    assert prompt.reason == "prompt_tokens reported 8, independent count 9 in http#1"
    completion = judge("token_counting", token_counts=[count("x", completion=(5, 4)), count(), count()])
    assert completion.verdict == "fail" and completion.reason == "completion_tokens reported 5, independent count 4 in x"


def test_missing_counts_fail_with_the_reason() -> None:
    verdict = judge("token_counting", token_counts=[count("a", prompt=(None, 9)), count("b", completion=(4, None)),
                                                    count(), count()])
    assert verdict.verdict == "fail"
    assert verdict.reason == "no reported prompt_tokens in a; no independent completion_tokens count in b"


def test_more_than_three_problems_are_summarised() -> None:
    verdict = judge("token_counting", token_counts=[count(str(i), prompt=(1, 2)) for i in range(5)])
    assert verdict.reason.endswith("; and 2 more") and verdict.measured == "5 mismatch(es)"


def test_too_few_or_no_counts() -> None:
    few = judge("token_counting", token_counts=[count(), count()])
    assert few.verdict == "inconclusive" and few.reason == "2 requests compared, need >= 3"
    none = judge("token_counting")
    assert none.verdict == "skip" and none.reason == "no reported counts were compared with an independent count"
    unable = judge("token_counting", token_count_note="no chat_template")
    assert unable.verdict == "inconclusive" and unable.reason == "no independent count was made: no chat_template"

"""Every branch of every judge names its case, its sample count and its measured value, and the
verdict helpers format as documented (pins harness/judge/ field by field, for mutation testing)."""

from __future__ import annotations

import pytest

from harness.config import Thresholds
from harness.judge.evidence import ConcurrencyComparison, TokenCount
from harness.judge.families import cases, during_generation
from harness.judge.gate import gate, provider_of
from harness.judge.item import accelerators_only, in_process_only
from harness.judge.table import BY_KEY, judge_item, judgement, skip_all
from harness.judge.verdicts import Judgement, fmt, holds
from harness.measure.results import Verdict
from judge_helpers import GIB, MIB, S, frame, judge, latency, rec, tele


def shape(verdict: Verdict) -> tuple:
    return verdict.verdict, verdict.measured, verdict.case, verdict.samples


def failed(index: int, **changes):
    return rec(index, ok=False, error_kind="timeout", error="t", **changes)


def test_fmt_and_holds() -> None:
    assert fmt(999.4) == "999" and fmt(1000.0) == "1,000" and fmt(1234.5) == "1,234" and fmt(0.01234) == "0.0123"
    assert fmt(None) == "-" and fmt("x") == "x" and fmt(3) == "3"
    assert holds(1.0, ">=", 1.0) and not holds(1.0, ">", 1.0) and holds(1.0, "<=", 1.0)
    with pytest.raises(ValueError, match="unknown operator '=='"):
        holds(1.0, "==", 1.0)


def j(key: str, provider: str = "cpu") -> Judgement:
    return judgement(BY_KEY[key], provider, "engine", Thresholds())


def test_defaults_name_the_provider_as_the_case() -> None:
    assert j("memory").skip("r").case == "cpu" and j("memory").fail("r").case == "cpu"
    assert j("memory").inconclusive("r").case == "cpu" and j("memory").passed("r").case == "cpu"
    assert j("memory").too_few(0, "x").case == "cpu" and j("memory").too_few(1, "x") is None
    assert j("memory").against(1.0).case == "cpu"
    assert j("memory").against(1.0).reason == "1 GiB <= 14 GiB" and j("memory").against(1.0).confidence is None
    assert j("memory").make("pass", "r", low=1.0, high=2.0).confidence == 0.95


def test_other_percentiles_and_missing_intervals() -> None:
    verdict = j("simple_query").percentile([0.1 * i for i in range(1, 11)], 90)
    assert verdict.verdict == "inconclusive" and verdict.case == "cpu" and verdict.samples == 10
    assert verdict.reason == "10 samples give no 95% interval for the p90"
    assert verdict.measured == pytest.approx(0.91)
    passed = j("simple_query").percentile([0.1] * 10, 50, note="why")
    assert passed.reason == "p50 0.1 s, 95% interval 0.1-0.1 s <= 1 s; 10 samples; why" and passed.case == "cpu"
    assert j("simple_query").percentile([0.1] * 7, 50).case == "cpu"


def test_latency_branches_name_case_and_samples() -> None:
    sweep = latency(*[(0.1, 0.5)] * 8)
    assert shape(judge("simple_query", frame(*sweep, failed(20)))) == ("fail", None, "cpu-p16-c1", 9)
    no_ttft = judge("subsequent_responses", frame(*sweep, rec(21, ttft_s=None)))
    assert shape(no_ttft) == ("fail", None, "cpu-p16-c1", 8)
    cold_failed = judge("first_response", frame(failed(0, cold=True, case_id="cold")))
    assert shape(cold_failed) == ("fail", None, "cold", 1)
    no_token = judge("first_response", frame(rec(0, cold=True, case_id="cold", ttft_s=None)))
    assert shape(no_token) == ("fail", None, "cold", 0)


def test_first_response_needs_its_minimum_and_says_so() -> None:
    item = BY_KEY["first_response"]
    strict = judgement(item, "cpu", "engine", Thresholds())
    object.__setattr__(item, "min_samples", 2)
    try:
        verdict = latency_module_first_response(strict)
    finally:
        object.__setattr__(item, "min_samples", 1)
    assert shape(verdict) == ("inconclusive", None, "cold", 1) and verdict.reason == "1 cold requests, need >= 2"


def latency_module_first_response(j_: Judgement) -> Verdict:
    from harness.judge.evidence import CheckInputs
    from harness.judge.latency import first_response

    return first_response(j_, CheckInputs("cpu", frame(rec(0, cold=True, case_id="cold")), tele()))


def test_load_and_health_shapes() -> None:
    assert shape(judge("model_loads", load_s=2.0)) == ("pass", 2.0, "cpu", 1)
    remote = judge("model_loads", target="http", health_model_loaded=True)
    assert shape(remote) == ("pass", None, "cpu", 1)
    assert remote.reason == "the server reports the model loaded; its load time is not visible"
    assert judge("model_loads", target="http", health_model_loaded=False).verdict == "skip"
    assert shape(judge("model_loads", load_s=1.0, load_error="x")) == ("fail", None, "cpu", None)
    assert shape(judge("health", target="http", health_model_loaded=True)) == ("pass", "ok", "cpu", 1)
    assert shape(judge("health", target="http", health_model_loaded=False)) == ("fail", "model not loaded", "cpu", 1)


def test_applicability_rules_in_words() -> None:
    assert in_process_only("cpu", "http") == ("not applicable: the server's execution provider cannot be "
                                              "profiled from outside its process")
    assert in_process_only("cpu", "engine") is None
    assert accelerators_only("cpu", "engine") == "not applicable: the CPU provider uses no accelerator"
    assert accelerators_only("remote", "http") == ("not applicable: the target runs in another process; "
                                                   "this process's counters say nothing")
    assert accelerators_only("dml", "engine") is None
    verdict = judge_item("provider_active", _inputs(target="http"), Thresholds())
    assert verdict.applicable is False and verdict.verdict == "skip"
    assert judge_item("provider_active", _inputs(), Thresholds()).applicable is True


def _inputs(target: str = "engine"):
    from harness.judge.evidence import CheckInputs

    return CheckInputs("cpu", frame(), tele(), target=target)


def test_skip_all_defaults_to_the_engine_target() -> None:
    verdicts = skip_all("cpu", "r")
    assert {v.target for v in verdicts} == {"engine"} and {v.provider for v in verdicts} == {"cpu"}
    assert {v.case for v in verdicts} == {"cpu"}
    assert {v.threshold for v in verdicts if v.check == "memory"} == {14.0}
    assert {v.threshold for v in skip_all("cpu", "r", thresholds=Thresholds(memory_peak_gib=2.0))
            if v.check == "memory"} == {2.0}


def proof(**changes):
    base = {"requested": "dml", "execution_provider": "DmlExecutionProvider", "share_on_requested": 0.9,
            "providers": [{"provider": "DmlExecutionProvider", "nodes": 9, "node_share": 0.9}], "device_kind": "GPU"}
    return {**base, **changes}


def test_provider_branches() -> None:
    alone = judge("provider_active", provider="dml", proof=proof())
    assert shape(alone) == ("pass", 0.9, "dml", 9)
    assert alone.reason == "0.9 >= 0.5 in dml; share of 9 kernel nodes on DmlExecutionProvider"
    no_providers = judge("provider_active", provider="dml", proof={k: v for k, v in proof().items() if k != "providers"})
    assert no_providers.verdict == "inconclusive" and no_providers.samples == 0
    none_nodes = judge("provider_active", provider="dml", proof=proof(providers=[{"provider": "X", "nodes": None}]))
    assert none_nodes.verdict == "inconclusive"
    kind = judge("accelerator_kind", provider="dml", proof=proof())
    assert shape(kind) == ("info", "GPU", "dml", 1)
    default_ep = judge("accelerator_kind", provider="dml", proof={"device_kind": "NPU"})
    assert default_ep.reason == "dml runs on NPU"


def test_resource_branches() -> None:
    records = frame(rec(0, submit_ns=0, end_ns=S))
    busy = tele(*[dict(t_ns=S // (i + 2), gpu_util_percent=10.0 * i, cpu_percent=5.0) for i in range(3)])
    util = judge("accelerator_utilisation", records, busy, provider="dml")
    assert shape(util) == ("pass", 20.0, "dml", 3)
    cpu = judge("cpu_usage", records, busy, provider="dml")
    assert shape(cpu) == ("pass", 5.0, "dml", 3)


def test_memory_branches() -> None:
    records = frame(rec(0, submit_ns=0, end_ns=S))
    peak = judge("memory", records, tele(dict(t_ns=S // 2, peak_rss_bytes=GIB), dict(t_ns=S // 3, peak_rss_bytes=GIB)))
    assert shape(peak) == ("pass", 1.0, "cpu", 2)
    broken = frame(*[rec(i, test="memory", case_id="m", rss_after_bytes=MIB) for i in range(3)], failed(3, test="memory",
                                                                                                        case_id="m"))
    assert shape(judge("memory_stable", broken)) == ("fail", None, "m", 4)
    unsorted = tele(dict(t_ns=3 * S + S // 2, rss_bytes=40 * MIB), dict(t_ns=S // 2, rss_bytes=10 * MIB))
    from harness.judge.memory import readings_at_request_ends

    _, values, _ = readings_at_request_ends(frame(*[rec(i, test="memory") for i in range(4)]), unsorted)
    assert values == [10 * MIB, 40 * MIB]


def test_families_window_includes_its_edges_and_every_case() -> None:
    records = frame(rec(0, case_id="a", submit_ns=10, end_ns=20), rec(1, case_id="b", submit_ns=100, end_ns=200))
    telemetry = tele(dict(t_ns=10), dict(t_ns=20), dict(t_ns=50), dict(t_ns=100), dict(t_ns=200), dict(t_ns=201))
    assert list(during_generation(telemetry, records)["t_ns"]) == [10, 20, 100, 200]
    assert during_generation(telemetry, frame()).empty and during_generation(tele(), records).empty
    assert cases(frame()) == "" and cases(records) == "a, b"


def conc(n: int = 8, **changes):
    rows = [rec(i, case_id="c4", test="concurrency", concurrency=4, submit_ns=(i // 4) * S + i,
                first_token_ns=(i // 4) * S + S // 10 + i, end_ns=(i // 4) * S + S // 2 + i, **changes)
            for i in range(n)]
    return rows


def test_concurrency_branches_name_case_samples_and_measured() -> None:
    ok = [ConcurrencyComparison("c4", 8)]
    assert shape(judge("concurrency", frame(*conc()), concurrency=ok)) == ("pass", "8/8 ok", "c4", 8)
    rows = conc()
    rows[0] = dict(rows[0], ok=False, error_kind="x", error="y")
    assert shape(judge("concurrency", frame(*rows), concurrency=ok)) == ("fail", "7/8 ok", "c4", 8)
    swapped = [ConcurrencyComparison("c4", 8, [1])]
    assert shape(judge("concurrency", frame(*conc()), concurrency=swapped)) == ("fail", "8/8 ok", "c4", 8)
    serial = [dict(r, submit_ns=0, first_token_ns=i * S + 1, end_ns=i * S + 2) for i, r in enumerate(conc())]
    assert shape(judge("concurrency", frame(*serial), concurrency=ok)) == ("fail", "8/8 ok", "c4", 8)
    back = [dict(r, submit_ns=i * S, first_token_ns=i * S + 1, end_ns=i * S + 2) for i, r in enumerate(conc())]
    assert shape(judge("concurrency", frame(*back), concurrency=ok)) == ("inconclusive", "8/8 ok", "c4", 8)
    assert shape(judge("concurrency", frame(*conc()))) == ("inconclusive", "8/8 ok", "c4", 8)
    few = judge("concurrency", frame(*conc(3)), concurrency=[ConcurrencyComparison("c4", 3)])
    assert shape(few) == ("inconclusive", "3/3 ok", "c4", 3)
    level_one = frame(*[dict(r, concurrency=0, case_id="r1") for r in conc()])
    open_only = judge("concurrency", level_one, concurrency=[ConcurrencyComparison("r1", 8)])
    assert shape(open_only) == ("inconclusive", "8/8 ok", "r1", 8)


def test_a_level_two_case_needs_two_in_flight() -> None:
    rows = [dict(r, concurrency=2, case_id="c2") for r in conc(4)]
    pairs = [dict(r, submit_ns=(i // 2) * S, first_token_ns=(i // 2) * S + 1, end_ns=(i // 2) * S + 9)
             for i, r in enumerate(rows)]
    verdict = judge("concurrency", frame(*pairs), concurrency=[ConcurrencyComparison("c2", 4)])
    assert verdict.verdict == "pass", verdict.reason


def test_responses_and_tokens_shapes() -> None:
    texts = frame(*[rec(i, test="real_responses", case_id="resp", output_text=t) for i, t in enumerate(["a b", "c d"])])
    assert shape(judge("real_responses", texts, decodes=True, matches_reference=True)) == ("pass", "2/2 distinct",
                                                                                             "resp", 2)
    assert shape(judge("real_responses", texts)) == ("pass (partial)", "2/2 distinct", "resp", 2)
    broken = frame(rec(0, test="real_responses", case_id="resp"), failed(1, test="real_responses", case_id="resp"))
    assert shape(judge("real_responses", broken)) == ("fail", None, "resp", 2)
    one = judge("real_responses", frame(rec(0, test="real_responses", case_id="resp")), decodes=True,
                matches_reference=True)
    assert shape(one) == ("inconclusive", "1/1 distinct", "resp", 1)
    same = frame(*[rec(i, test="real_responses", case_id="resp", output_text="x") for i in range(2)])
    assert judge("real_responses", same, decodes=True, matches_reference=True).case == "resp"
    counts = [TokenCount("", 1, 1, 2, 2, note) for note in ("b", "a", "b")]
    passed = judge("token_counting", token_counts=counts)
    assert shape(passed) == ("pass", "3 compared", "cpu", 3)
    assert passed.reason == "3 requests match the independent counts (a; b)"
    few = judge("token_counting", token_counts=counts[:2])
    assert shape(few) == ("inconclusive", "2 compared", "cpu", 2)
    unnamed = judge("token_counting", token_counts=[TokenCount("", 1, 2, 2, 2)] * 3)
    assert unnamed.reason == "prompt_tokens reported 1, independent count 2; " * 2 + "prompt_tokens reported 1, " \
        "independent count 2"


def test_gate_wording_for_many_failures_and_several_providers() -> None:
    def failing(n: int) -> list[Verdict]:
        out = skip_all("cpu", "r")
        for v in out:
            if v.applicable:
                v.verdict = "pass"
        gating = [v for v in out if v.gating and v.applicable]
        for v in gating[:n]:
            v.verdict, v.case = "fail", ""
        return out

    four = gate(failing(4)).message
    assert four.endswith("[cpu]") and " ..." not in four and four.startswith("4 gating item(s) failed")
    five = gate(failing(5)).message
    assert five.endswith(" ...") and five.count("[cpu]") == 4
    both = skip_all("cpu", "r") + skip_all("cuda", "r")
    for v in both:
        if v.applicable:
            v.verdict = "pass"
    assert gate(both).message == "every gating item measured and passed for cpu, cuda"
    assert gate(both, ["cuda"]).message == "every gating item measured and passed for cuda"
    assert provider_of(Verdict("x", "X", "pass", None, None, case="dml")) == "dml"

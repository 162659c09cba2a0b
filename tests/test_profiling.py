"""Proof of execution: the ORT profile parser on a real CPU profile and a DirectML-style sample,
and a live profiled generation on the tiny model."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.measure.proof import prove_provider
from harness.providers import ProviderSettings
from harness.providers.proof import (
    UNKNOWN_PROVIDER,
    check_strict,
    classify_by_name,
    load_profile,
    parse_profile,
    proof_record,
    provider_table,
)
from harness.targets.base import Request

PROFILES = Path(__file__).parent / "fixtures" / "profiles"
CPU_PROFILE = PROFILES / "cpu_tiny_phi3.json"
DML_SAMPLE = PROFILES / "dml_style_sample.json"
DML, CPU = "DmlExecutionProvider", "CPUExecutionProvider"
PROOF_KEYS = {"requested", "execution_provider", "providers", "share_on_requested", "strict", "device_kind"}
ROW_KEYS = {"provider", "nodes", "kernel_time_us", "node_share", "time_share"}


def _kernel_events(path: Path) -> list[dict]:
    """Independent of the parser: the raw kernel events as ORT wrote them."""
    events = json.loads(path.read_text(encoding="utf-8"))
    return [e for e in events if e["cat"] == "Node" and e["name"].endswith("_kernel_time")]


# -- the real CPU profile ----------------------------------------------------------------------


def test_real_cpu_profile_is_all_on_cpu() -> None:
    kernels = _kernel_events(CPU_PROFILE)
    raw = json.loads(CPU_PROFILE.read_text(encoding="utf-8"))
    runs = sum(1 for e in raw if e["cat"] == "Session" and e["name"] == "model_run")
    table = parse_profile(CPU_PROFILE)
    assert [row.provider for row in table.rows] == [CPU]
    row = table.rows[0]
    assert row.nodes == len({e["name"] for e in kernels})
    assert row.executions == len(kernels) == row.nodes * runs  # every node ran once per Run
    assert row.kernel_time_us == sum(int(e["dur"]) for e in kernels)
    assert (row.node_share, row.time_share) == (1.0, 1.0)
    assert table.node_share(CPU) == 1.0 and table.node_share(DML) == 0.0
    assert table.classified_by_name == 0  # ORT gave args.provider for every CPU kernel


def test_proof_record_has_exactly_the_checklist_shape() -> None:
    record = proof_record(parse_profile(CPU_PROFILE), ProviderSettings(name="cpu"), "CPU")
    assert set(record) == PROOF_KEYS
    assert all(set(row) == ROW_KEYS for row in record["providers"])
    assert record["requested"] == "cpu" and record["execution_provider"] == CPU
    assert record["share_on_requested"] == 1.0 and record["strict"] is False and record["device_kind"] == "CPU"
    json.dumps(record)  # plain data


# -- the DirectML-style sample (expected values computed by hand, see the fixture's README) -------


def test_dml_sample_table_matches_the_hand_computed_one() -> None:
    table = parse_profile(DML_SAMPLE)
    dml, cpu = table.row(DML), table.row(CPU)
    # DML: Memcpy, Gather, DmlFusedNode_0_0, _0_1, _1_0, Memcpy_token_2 = 6 nodes; CPU: ReduceSum, Sub, Cast = 3.
    assert (dml.nodes, cpu.nodes, table.total_nodes) == (6, 3, 9)
    # Run 1 + run 2: DML 12+5 + 30+10 + 900+300 + 450+150 + 1200+400 + 25+9; CPU 20+8 + 4+2 + 3+2.
    assert (dml.kernel_time_us, cpu.kernel_time_us, table.total_time_us) == (3491, 39, 3530)
    assert (dml.executions, cpu.executions) == (12, 6)
    assert dml.node_share == pytest.approx(6 / 9, abs=1e-6)
    assert cpu.node_share == pytest.approx(3 / 9, abs=1e-6)
    assert dml.time_share == pytest.approx(3491 / 3530, abs=1e-6)
    assert [row.provider for row in table.rows] == [DML, CPU]  # most nodes first


def test_dml_fused_nodes_without_args_are_classified_by_name() -> None:
    table = parse_profile(DML_SAMPLE)
    # DmlFusedNode_0_0 (no args) and DmlFusedNode_0_1 (empty args), two runs each.
    assert table.classified_by_name == 4
    assert UNKNOWN_PROVIDER not in {row.provider for row in table.rows}


def test_dml_sample_proof_reports_the_share_on_directml() -> None:
    record = proof_record(parse_profile(DML_SAMPLE), ProviderSettings(name="dml"), "GPU")
    assert record["execution_provider"] == DML
    assert record["share_on_requested"] == pytest.approx(6 / 9, abs=1e-6)
    assert record["share_on_requested"] >= 0.5  # the checklist's default threshold would pass


def test_strict_mode_turns_cpu_placed_nodes_into_an_error() -> None:
    table = parse_profile(DML_SAMPLE)
    check_strict(table, ProviderSettings(name="dml"))  # not strict: the CPU nodes are allowed
    with pytest.raises(HarnessError, match="strict mode: 3 on CPUExecutionProvider") as caught:
        check_strict(table, ProviderSettings(name="dml", strict=True))
    assert "\n" not in str(caught.value)


# -- classification and odd files ------------------------------------------------------------------


@pytest.mark.parametrize("node,provider", [
    ("DmlFusedNode_3_12", DML),
    ("QNNExecutionProvider_QNN_9876543210_0_0", "QNNExecutionProvider"),
    ("TensorrtExecutionProvider_TRTKernel_graph_main_1_0", "TensorrtExecutionProvider"),
    ("OpenVINO-EP-subgraph_2", "OpenVINOExecutionProvider"),
    ("/model/layers.0/attn/MatMul", UNKNOWN_PROVIDER),
])
def test_classify_by_name(node: str, provider: str) -> None:
    assert classify_by_name(node) == provider


def test_kernels_of_unknown_placement_still_count_in_the_totals() -> None:
    events = [
        {"cat": "Node", "name": "a_kernel_time", "dur": 30, "args": {"provider": CPU, "op_name": "Add"}},
        {"cat": "Node", "name": "mystery_kernel_time", "dur": 10},
        {"cat": "Node", "name": "a_fence_before", "dur": 0, "args": {}},
        {"cat": "Session", "name": "model_run", "dur": 99, "args": {}},
    ]
    table = provider_table(events)
    assert table.node_share(CPU) == 0.5 and table.time_share(CPU) == 0.75
    assert table.row(UNKNOWN_PROVIDER).nodes == 1


def test_a_profile_cut_off_mid_write_keeps_its_complete_events(tmp_path: Path) -> None:
    text = CPU_PROFILE.read_text(encoding="utf-8")
    whole = json.loads(text)
    last_node = text.rindex('{"cat" : "Node"')
    cut = text.index('"args"', last_node) + 20  # inside the last kernel event's args
    truncated = tmp_path / "cut.json"
    truncated.write_text(text[:cut], encoding="utf-8")
    events = load_profile(truncated)
    node_events = [e for e in whole if e["cat"] == "Node"]
    assert events == whole[: whole.index(node_events[-1])]  # every complete event, nothing more


def test_chrome_trace_object_form_is_accepted(tmp_path: Path) -> None:
    wrapped = tmp_path / "trace.json"
    wrapped.write_text(json.dumps({"traceEvents": json.loads(DML_SAMPLE.read_text(encoding="utf-8"))}), encoding="utf-8")
    assert parse_profile(wrapped) == parse_profile(DML_SAMPLE)


@pytest.mark.parametrize("content,problem", [
    ('{"not": "a profile"}', "not an ONNX Runtime profile"),
    ("[]", "no kernel events"),
    ("garbage", "not valid JSON"),
])
def test_bad_profiles_are_one_line_errors(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(HarnessError, match=problem):
        parse_profile(path)


# -- a live profiled generation ------------------------------------------------------------------


def _leftover_scratch() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob("phi3-harness-profile-*")}


def test_prove_provider_on_cpu_moves_the_profile_into_the_run_folder(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    before = _leftover_scratch()
    request = Request(prompt_ids=(1, 32010, 450, 4996, 32007, 32001), max_new_tokens=3)
    proof = prove_provider(tiny_model_dir, ProviderSettings(name="cpu"), request, run_dir=tmp_path / "run")
    assert set(proof) == PROOF_KEYS
    assert proof["requested"] == "cpu" and proof["share_on_requested"] == 1.0
    assert [row["provider"] for row in proof["providers"]] == [CPU]
    assert proof["device_kind"] in ("CPU", "unknown")
    kept = tmp_path / "run" / "ort_profile_cpu.json"
    assert kept.is_file()
    table = parse_profile(kept)
    assert table.rows[0].nodes == proof["providers"][0]["nodes"]
    assert table.rows[0].executions == 3 * table.rows[0].nodes  # prefill + 2 decode steps
    assert list(workdir.iterdir()) == []  # nothing written to the working directory
    assert _leftover_scratch() == before


def test_prove_provider_without_a_run_folder_leaves_no_file(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    before = _leftover_scratch()
    proof = prove_provider(tiny_model_dir, ProviderSettings(name="cpu"), Request(prompt_ids=(1, 2, 3), max_new_tokens=2))
    assert proof["share_on_requested"] == 1.0
    assert list(tmp_path.iterdir()) == []
    assert _leftover_scratch() == before


# -- QNN and CUDA samples: the share auto needs, strict mode's reason ------------------------------

QNN_SAMPLE = PROFILES / "qnn_style_sample.json"
CUDA_SAMPLE = PROFILES / "cuda_style_sample.json"
QNN, CUDA = "QNNExecutionProvider", "CUDAExecutionProvider"


def test_qnn_partitions_without_args_are_classified_by_name_and_the_share_is_small() -> None:
    table = parse_profile(QNN_SAMPLE)
    # 10 distinct nodes: 2 QNN partitions (one without args), 8 on CPU; hand-counted from the file
    assert (table.total_nodes, table.row(QNN).nodes, table.row(CPU).nodes) == (10, 2, 8)
    assert table.classified_by_name == 2  # the partition without args, in each of the two runs
    assert table.node_share(QNN) == 0.2
    assert table.row(QNN).kernel_time_us == 2 * (310 + 290)


def test_auto_passes_over_qnn_that_runs_a_fifth_of_the_graph_and_says_so() -> None:
    from harness.providers.choice import choose_provider
    from harness.providers.probe import ProbeResult

    proofs = {"qnn": proof_record(parse_profile(QNN_SAMPLE), ProviderSettings(name="qnn")),
              "cpu": proof_record(parse_profile(CPU_PROFILE), ProviderSettings(name="cpu"))}

    def usable(name: str) -> ProbeResult:
        return ProbeResult(name, name, "usable", "session created")

    choice = choose_provider("auto", ("qnn", "cpu"), usable, verify=proofs.__getitem__, share_min=0.5)
    assert choice.chosen == "cpu" and choice.proof["share_on_requested"] == 1.0
    [(name, reason)] = choice.passed_over
    assert name == "qnn" and "only 20% of kernel nodes ran on QNNExecutionProvider" in reason
    assert choose_provider("auto", ("qnn", "cpu"), usable, verify=proofs.__getitem__, share_min=0.2).chosen == "qnn"


def test_auto_passes_over_a_provider_whose_profiled_generation_fails() -> None:
    from harness.providers.choice import choose_provider
    from harness.providers.probe import ProbeResult

    def verify(name: str) -> dict:
        if name == "dml":
            raise HarnessError("the DirectML device was removed")
        return proof_record(parse_profile(CPU_PROFILE), ProviderSettings(name=name))

    choice = choose_provider("auto", ("dml", "cpu"), lambda n: ProbeResult(n, n, "usable", "ok"), verify=verify)
    assert choice.chosen == "cpu"
    assert choice.passed_over == [("dml", "usable, but the profiled generation failed: the DirectML device was removed")]


def test_cuda_keeps_shape_ops_on_cpu_and_strict_mode_says_that_is_ort_not_the_model() -> None:
    table = parse_profile(CUDA_SAMPLE)
    assert (table.total_nodes, table.row(CUDA).nodes, table.row(CPU).nodes) == (11, 8, 3)
    assert table.node_share(CUDA) == round(8 / 11, 6)
    with pytest.raises(HarnessError, match="3 on CPUExecutionProvider instead of CUDAExecutionProvider") as caught:
        check_strict(table, ProviderSettings(name="cuda", strict=True))
    assert "shape computations" in str(caught.value) and "the model has ops" not in str(caught.value)

"""The doctor: real probes and a real profiled generation on the tiny model, its exit codes, and
the plain-words traps for setups this machine is not (judged from a described platform)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import onnxruntime as ort
import pytest

from harness.commands import doctor as doctor_command
from harness.measure.proof import prove_provider
from harness.providers.doctor import diagnose, distribution_problems, traps
from harness.errors import HarnessError
from harness.providers.platform import PlatformInfo

COMPILED_IN = ort.get_available_providers()
ACCELERATORS = {"dml": "DmlExecutionProvider", "qnn": "QNNExecutionProvider", "cuda": "CUDAExecutionProvider"}


def _run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="phi3-harness doctor")
    doctor_command.add_arguments(parser)
    return doctor_command.run(parser.parse_args(list(argv)))


@pytest.fixture(scope="module")
def cpu_report(tiny_model_dir: Path) -> dict:
    return diagnose(tiny_model_dir, "cpu", prove=prove_provider)


def test_cpu_is_usable_with_all_kernels_on_cpu(cpu_report: dict) -> None:
    assert cpu_report["ok"] is True and cpu_report["chosen"] == "cpu"
    probes = {p["name"]: p for p in cpu_report["probes"]}
    assert probes["cpu"]["status"] == "usable"
    assert set(cpu_report["proof"]) == {"requested", "execution_provider", "providers", "share_on_requested",
                                        "strict", "device_kind"}
    assert cpu_report["proof"]["share_on_requested"] == 1.0
    assert cpu_report["proof"]["execution_provider"] == "CPUExecutionProvider"
    assert cpu_report["proof_error"] is None
    assert cpu_report["model"]["valid"] is True
    json.dumps(cpu_report)  # the --json output is this dict


def test_accelerators_not_compiled_in_are_reported_not_installed_with_reasons(cpu_report: dict) -> None:
    probes = {p["name"]: p for p in cpu_report["probes"]}
    assert set(probes) >= {"cpu", *ACCELERATORS}
    for name, ep in ACCELERATORS.items():
        if ep in COMPILED_IN:
            continue
        assert probes[name]["status"] == "not_installed"
        assert probes[name]["reason"].startswith(ep)


def test_report_carries_platform_runtime_and_devices(cpu_report: dict) -> None:
    assert cpu_report["system"]["python_arch"] and cpu_report["system"]["cpu_arch"]
    assert cpu_report["onnxruntime"]["version"] == ort.__version__
    assert cpu_report["onnxruntime"]["compiled_in"] == COMPILED_IN
    assert "onnxruntime" in {name.lower() for name in cpu_report["onnxruntime"]["distributions"]}
    devices = cpu_report["ep_devices"]
    assert devices["supported"] == hasattr(ort, "get_ep_devices")
    if devices["supported"]:
        cpu_devices = [d for d in devices["devices"] if d["execution_provider"] == "CPUExecutionProvider"]
        assert cpu_devices and cpu_devices[0]["device_type"] == "CPU"


def test_an_unusable_provider_is_not_ok_with_one_line_reason(tiny_model_dir: Path) -> None:
    missing = [name for name, ep in ACCELERATORS.items() if ep not in COMPILED_IN]
    if not missing:
        pytest.skip("every accelerator provider is compiled in here")
    report = diagnose(tiny_model_dir, missing[0])
    assert report["ok"] is False and report["chosen"] is None and report["proof"] is None
    assert missing[0] in report["reason"] and "\n" not in report["reason"]


def test_auto_reports_what_it_passed_over(tiny_model_dir: Path) -> None:
    report = diagnose(tiny_model_dir, "auto", chain=("cuda", "dml", "cpu"))
    passed = [item["provider"] for item in report["choice"]["passed_over"]]
    expected = [name for name in ("cuda", "dml") if ACCELERATORS[name] not in COMPILED_IN]
    if len(expected) < 2:
        pytest.skip("needs cuda and dml both missing from this ORT build")
    assert report["ok"] and report["chosen"] == "cpu" and passed == expected


def test_an_invalid_model_folder_is_reported_and_not_ok(tmp_path: Path) -> None:
    report = diagnose(tmp_path / "no-such-model", "cpu")
    assert report["model"]["valid"] is False and "does not exist" in report["model"]["error"]
    assert report["ok"] is False and "not valid" in report["reason"]


def test_an_unknown_provider_is_a_usage_error(tiny_model_dir: Path) -> None:
    with pytest.raises(HarnessError, match="unknown provider 'tpu'"):
        diagnose(tiny_model_dir, "tpu")


# -- the command ------------------------------------------------------------------------------------


def test_cli_json_exits_zero_for_cpu(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_cli("--model", str(tiny_model_dir), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["proof"]["share_on_requested"] == 1.0


def test_cli_strict_flag_reaches_the_proof(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_cli("--model", str(tiny_model_dir), "--strict", "--json") == 0
    assert json.loads(capsys.readouterr().out)["proof"]["strict"] is True


def test_cli_exits_non_zero_and_says_the_result_once_for_an_unusable_provider(
    tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    if ACCELERATORS["dml"] in COMPILED_IN:
        pytest.skip("DirectML is compiled in here")
    assert _run_cli("--model", str(tiny_model_dir), "--provider", "dml") == 1
    captured = capsys.readouterr()
    assert captured.err == ""
    assert captured.out.count("provider dml is not installed") == 1
    assert "Result        NOT USABLE: provider dml is not installed" in captured.out
    assert max(len(line) for line in captured.out.splitlines()) <= 100


def test_cli_json_failure_adds_one_line_on_stderr(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if ACCELERATORS["dml"] in COMPILED_IN:
        pytest.skip("DirectML is compiled in here")
    assert _run_cli("--model", str(tiny_model_dir), "--provider", "dml", "--json") == 1
    captured = capsys.readouterr()
    error_lines = captured.err.strip().splitlines()
    assert len(error_lines) == 1 and error_lines[0].startswith("phi3-harness doctor: provider dml is not installed")
    assert json.loads(captured.out)["ok"] is False


def test_cli_text_names_every_section(tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run_cli("--model", str(tiny_model_dir)) == 0
    out = capsys.readouterr().out
    for heading in ("System", "ONNX Runtime", "Packages", "Compiled in", "Model", "Providers", "EP devices",
                    "Proof of execution", "checked and not found here", "Result        OK"):
        assert heading in out


def test_cli_takes_provider_settings_and_chain_from_a_config(
    tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "doctor.toml"
    config.write_text('[fallback]\nchain = ["qnn", "cpu"]\n[provider.cpu]\nthreads = 1\n', encoding="utf-8")
    assert _run_cli("--model", str(tiny_model_dir), "--provider", "auto", "--config", str(config), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["chosen"] in ("qnn", "cpu")
    if ACCELERATORS["qnn"] not in COMPILED_IN:
        assert [item["provider"] for item in report["choice"]["passed_over"]] == ["qnn"]


# -- installed packages and known traps ----------------------------------------------------------


def test_onnxruntime_beside_directml_is_flagged_with_the_fix() -> None:
    problems = distribution_problems({"onnxruntime": "1.20.1", "onnxruntime-directml": "1.20.1"})
    assert len(problems) == 1
    assert "DirectML" in problems[0] and "pip uninstall -y onnxruntime onnxruntime-directml" in problems[0]


def test_genai_cpu_package_beside_directml_is_flagged() -> None:
    problems = distribution_problems({"onnxruntime-directml": "1.20", "onnxruntime-genai": "0.6"})
    assert any("onnxruntime-genai-directml" in p for p in problems)


def test_two_accelerated_runtimes_are_flagged_and_one_runtime_is_fine() -> None:
    assert any("overwrite each other" in p for p in distribution_problems({"onnxruntime-gpu": "1", "onnxruntime-qnn": "1"}))
    assert distribution_problems({"onnxruntime": "1.32.0", "onnxruntime-genai": "0.18.0"}) == []
    assert distribution_problems({"onnxruntime-directml": "1.20"}) == []
    assert "no onnxruntime distribution" in distribution_problems({})[0]


def _platform(os_name: str, cpu: str, python: str) -> PlatformInfo:
    return PlatformInfo(os_name, "11", cpu, python, "3.12.0", f"{os_name.lower()}-{python}", 64, "")


def _applying(info: PlatformInfo, requested: str = "cpu", problems: list[str] | None = None) -> set[str]:
    runtime = {"problems": problems or []}
    return {t["id"] for t in traps(info, runtime, [], requested) if t["applies"]}


def test_windows_on_arm_with_arm64_python_gets_the_wheel_npu_and_adreno_explanations() -> None:
    applying = _applying(_platform("Windows", "arm64", "arm64"))
    assert applying == {"woa-no-directml-wheel", "snapdragon-dml-is-gpu", "hexagon-needs-qnn"}


def test_windows_on_arm_with_x64_python_is_told_it_runs_emulated() -> None:
    applying = _applying(_platform("Windows", "arm64", "x86_64"))
    assert "woa-emulated-python" in applying and "woa-no-directml-wheel" not in applying


def test_linux_asking_for_dml_is_told_directml_is_windows_only() -> None:
    assert _applying(_platform("Linux", "x86_64", "x86_64"), "dml") == {"directml-windows-only"}
    assert _applying(_platform("Linux", "x86_64", "x86_64"), "cpu") == set()


def test_every_trap_is_explained_in_words() -> None:
    for trap in traps(_platform("Linux", "x86_64", "x86_64"), {"problems": []}, [], "cpu"):
        assert trap["title"] and len(trap["text"]) > 40


# -- QNN 2.x: a plugin beside the CPU onnxruntime ---------------------------------------------------

QNN_PLUGIN = {"onnxruntime": "1.24.4", "onnxruntime-qnn": "2.7.0"}


def test_qnn_2x_beside_onnxruntime_is_coherent_and_never_told_to_uninstall_it() -> None:
    from harness.providers.inventory import combination

    assert distribution_problems(QNN_PLUGIN) == []
    assert combination(QNN_PLUGIN) == ("CPU onnxruntime 1.24.4 + onnxruntime-qnn 2.7.0 (QNN plugin): coherent")


@pytest.mark.parametrize("installed,fix", [
    ({"onnxruntime-qnn": "2.7.0"}, 'pip install "onnxruntime>=1.24.2"'),
    ({"onnxruntime": "1.24.1", "onnxruntime-qnn": "2.7.0"}, 'pip install -U "onnxruntime>=1.24.2"'),
])
def test_qnn_2x_without_a_fitting_onnxruntime_says_which_to_install(installed: dict, fix: str) -> None:
    [problem] = distribution_problems(installed)
    assert fix in problem and "uninstall" not in problem


def test_qnn_1x_beside_onnxruntime_is_still_two_builds_overwriting_each_other() -> None:
    [problem] = distribution_problems({"onnxruntime": "1.22.0", "onnxruntime-qnn": "1.22.0"})
    assert "pip uninstall -y onnxruntime onnxruntime-qnn" in problem


def test_doctor_probes_qnn_2x_through_the_plugin_and_says_how(tiny_model_dir: Path) -> None:
    from fake_ort import ep_device, fake_runtime

    from harness.providers.inventory import ort_inventory
    from harness.providers.probe import probe

    runtime = fake_runtime("1.24.4", QNN_PLUGIN, plugin_devices=(ep_device("QNNExecutionProvider", "NPU"),))
    inventory = ort_inventory(runtime)
    assert inventory["combination"].endswith("coherent") and inventory["problems"] == []
    assert inventory["attachments"]["qnn"]["mode"] == "plugin"
    assert "QNNExecutionProvider" not in inventory["compiled_in"]  # a plugin never is; the probe decides
    result = probe("qnn", tiny_model_dir, runtime=runtime)
    assert result.usable and result.compiled_in
    assert "add_provider_for_devices" in result.notes[0] and result.unverified


def test_unverified_on_hardware_is_flagged_in_doctor(cpu_report: dict, tiny_model_dir: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    flags = cpu_report["unverified_on_hardware"]
    assert any(flag.startswith("DirectML adapter choice") for flag in flags)
    assert any(flag.startswith("CUDA:") and "never ran end to end" in flag for flag in flags)
    assert _run_cli("--model", str(tiny_model_dir)) == 0
    out = capsys.readouterr().out
    assert "Unverified on hardware" in out and "Combination   CPU onnxruntime" in out

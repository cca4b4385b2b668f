"""Device strings, preflight against the real OpenVINO core of this machine (CPU only), properties."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from daemon.config import InferencePrecision, PerformanceHint
from daemon.config.device import parse_device
from daemon.devices import compile_properties, execution_devices, preflight
from ovedge.errors import ConfigError, ModelError

CORE = ov.Core()


@pytest.fixture(scope="module")
def model_xml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    param = ops.parameter([1, 8, 8, 3], ov.Type.f32, name="frame")
    model = ov.Model([ops.relu(param).output(0)], [param], "relu")
    xml = tmp_path_factory.mktemp("devices") / "model.xml"
    ov.save_model(model, xml)
    return xml


def test_this_machine_has_only_cpu() -> None:
    """The facts the other tests rely on: OpenVINO sees CPU and nothing else here."""
    assert CORE.available_devices == ["CPU"]


@pytest.mark.parametrize(
    ("text", "normal", "kind", "candidates"),
    [
        ("CPU", "CPU", "CPU", ("CPU",)),
        (" gpu ", "GPU", "GPU", ("GPU",)),
        ("GPU.1", "GPU.1", "GPU", ("GPU.1",)),
        ("NPU", "NPU", "NPU", ("NPU",)),
        ("AUTO", "AUTO", "AUTO", ()),
        ("auto:npu, gpu,cpu", "AUTO:NPU,GPU,CPU", "AUTO", ("NPU", "GPU", "CPU")),
        ("HETERO:GPU.0,CPU", "HETERO:GPU.0,CPU", "HETERO", ("GPU.0", "CPU")),
        ("MULTI:GPU,CPU", "MULTI:GPU,CPU", "MULTI", ("GPU", "CPU")),
    ],
)
def test_parse_accepts_and_normalises(text: str, normal: str, kind: str, candidates: tuple[str, ...]) -> None:
    """Every documented form parses to its upper-case normal form and its candidate list."""
    spec = parse_device(text)
    assert (spec.text, spec.kind, spec.candidates) == (normal, kind, candidates)


@pytest.mark.parametrize("text", ["MYRIAD", "VPU", "AUTO:MYRIAD,CPU"])
def test_removed_vpu_is_refused_with_the_way_out(text: str) -> None:
    """VPU/MYRIAD anywhere: removed in 2023.0, use NPU or 2022.3 LTS."""
    name = "MYRIAD" if "MYRIAD" in text else "VPU"
    with pytest.raises(ConfigError) as err:
        parse_device(text)
    assert str(err.value) == (
        f"device {text!r}: {name} (Myriad VPU) was removed from OpenVINO in 2023.0; "
        "use NPU on Core Ultra or stay on 2022.3 LTS"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("FPGA", "unknown device 'FPGA'"),
        ("CPU:1", "only AUTO, HETERO and MULTI take a device list"),
        ("HETERO", "HETERO needs a device list, e.g. HETERO:GPU,CPU"),
        ("AUTO:MULTI:CPU", "MULTI:CPU"),
        ("AUTO:CPU,CPU", "CPU is named twice"),
        ("  ", "no device given"),
    ],
)
def test_malformed_strings_are_config_errors(text: str, message: str) -> None:
    """Strings that can never work are refused before OpenVINO is asked."""
    with pytest.raises(ConfigError, match=message):
        parse_device(text)


def test_preflight_cpu(caplog: pytest.LogCaptureFixture) -> None:
    """CPU is present: chosen as is, no fallback, no warning."""
    with caplog.at_level(logging.WARNING):
        choice = preflight(CORE, "cpu")
    assert (choice.device, choice.fell_back, choice.reason, choice.available) == ("CPU", False, None, ("CPU",))
    assert caplog.records == []


def test_openvino_itself_fails_on_gpu_and_npu(model_xml: Path) -> None:
    """What preflight spares the user: OpenVINO's own raw errors for GPU and NPU on this machine."""
    # the GPU plugin's wording depends on what was asked before in the process; both name [GPU]
    with pytest.raises(RuntimeError, match=r"\[GPU\] (Can't get .* no supported devices|Context was not init)"):
        CORE.compile_model(model_xml, "GPU")
    with pytest.raises(RuntimeError, match="VCL compiler loading failed"):
        CORE.compile_model(model_xml, "NPU")


def test_missing_gpu_names_device_found_and_what_to_check(tmp_path: Path) -> None:
    """GPU absent, no fallback: one message with the device, what was found, driver, /dev/dri, groups."""
    with pytest.raises(ModelError) as err:
        preflight(CORE, "GPU", dev_root=tmp_path)
    dri = tmp_path / "dri"
    assert str(err.value) == (
        "device GPU is not available: OpenVINO found CPU; check for GPU: the Intel GPU compute runtime "
        f"(intel-opencl-icd, level-zero) is installed, {dri}/renderD* exists ({dri} is absent here), "
        "and the service user is in the 'render' and 'video' groups; "
        'or set model.fallback = ["CPU"] to run on the CPU meanwhile'
    )


def test_missing_npu_message_and_present_dev_node(tmp_path: Path) -> None:
    """NPU absent: names the NPU driver, /dev/accel and the render group; no 'absent' claim when it exists."""
    (tmp_path / "accel").mkdir()
    with pytest.raises(ModelError) as err:
        preflight(CORE, "NPU", dev_root=tmp_path)
    accel = tmp_path / "accel"
    assert str(err.value) == (
        "device NPU is not available: OpenVINO found CPU; check for NPU: the Intel NPU driver "
        f"(linux-npu-driver, intel-driver-compiler-npu) is installed, {accel}/accel0 exists, and the service "
        "user is in the 'render' group; "
        'or set model.fallback = ["CPU"] to run on the CPU meanwhile'
    )


def test_fallback_to_cpu_is_said(caplog: pytest.LogCaptureFixture, model_xml: Path) -> None:
    """GPU.1 absent with fallback [NPU, CPU]: falls back to the first usable one and logs why."""
    with caplog.at_level(logging.WARNING, logger="daemon.devices"):
        choice = preflight(CORE, "GPU.1", ["NPU", "CPU"])
    assert choice.device == "CPU"
    assert choice.fell_back is True
    assert choice.reason == "device GPU.1 is not available: OpenVINO found CPU (GPU.1 missing); falling back to CPU"
    assert [r.getMessage() for r in caplog.records] == [choice.reason]
    compiled = CORE.compile_model(model_xml, choice.device)
    assert execution_devices(compiled) == ("CPU",)


def test_fallback_that_is_missing_too(tmp_path: Path) -> None:
    """When the fallback is absent as well, the error says so (and does not suggest a fallback)."""
    with pytest.raises(ModelError, match=r"^device NPU is not available: OpenVINO found CPU; fallback GPU not"):
        preflight(CORE, "NPU", ["GPU"], dev_root=tmp_path)


def test_auto_with_a_present_candidate_runs_on_it(model_xml: Path) -> None:
    """AUTO:GPU,CPU is usable (notes GPU is absent); compiled, it reports CPU as execution device."""
    choice = preflight(CORE, "AUTO:GPU,CPU")
    assert (choice.device, choice.fell_back) == ("AUTO:GPU,CPU", False)
    assert choice.notes == ("AUTO:GPU,CPU: GPU not present (found CPU); using the others",)
    compiled = CORE.compile_model(model_xml, choice.device)
    assert execution_devices(compiled) == ("CPU",)


@pytest.mark.parametrize("device", ["AUTO:GPU", "HETERO:GPU,CPU", "AUTO:NPU,GPU"])
def test_virtual_devices_without_enough_present_fail(device: str, tmp_path: Path) -> None:
    """AUTO with no present candidate, or HETERO with any absent one, fails preflight (as OpenVINO would)."""
    with pytest.raises(ModelError, match=rf"^device {device} is not available: OpenVINO found CPU; check for "):
        preflight(CORE, device, dev_root=tmp_path)


def test_multi_is_accepted_with_deprecation_warning(caplog: pytest.LogCaptureFixture, model_xml: Path) -> None:
    """MULTI works but warns, naming AUTO's CUMULATIVE_THROUGHPUT mode as the replacement."""
    with caplog.at_level(logging.WARNING, logger="daemon.devices"):
        choice = preflight(CORE, "MULTI:CPU")
    expected = (
        'MULTI is deprecated by OpenVINO: use AUTO:CPU with hint = "cumulative_throughput" '
        "(AUTO's CUMULATIVE_THROUGHPUT mode) instead"
    )
    assert choice.notes == (expected,)
    assert [r.getMessage() for r in caplog.records] == [expected]
    assert execution_devices(CORE.compile_model(model_xml, choice.device)) == ("CPU",)


def test_compile_properties_reach_the_compiled_model(model_xml: Path, tmp_path: Path) -> None:
    """Hint, requests, streams, threads, precision and cache dir are applied (read back; blob written)."""
    cache = tmp_path / "cache"
    props = compile_properties(
        hint=PerformanceHint.THROUGHPUT, num_requests=3, streams=2, threads=2,
        inference_precision=InferencePrecision.F32, cache_dir=cache,
    )
    compiled = CORE.compile_model(str(model_xml), "CPU", props)
    assert str(compiled.get_property("PERFORMANCE_HINT")) == "THROUGHPUT"
    assert int(compiled.get_property("NUM_STREAMS")) == 2
    assert int(compiled.get_property("INFERENCE_NUM_THREADS")) == 2
    assert compiled.get_property("INFERENCE_PRECISION_HINT") == ov.Type.f32
    assert any(p.suffix == ".blob" for p in cache.iterdir())
    request = compiled.create_infer_request()
    request.infer([np.full((1, 8, 8, 3), -1.0, np.float32)])
    assert float(request.get_output_tensor(0).data.max()) == 0.0


def test_compile_properties_minimal_and_every_enum_value_mapped() -> None:
    """Only the hint is set by default; every hint and precision the config accepts has an OpenVINO value
    (a bad value is refused by the config schema, see tests/daemon/test_config.py)."""
    assert compile_properties(hint=PerformanceHint.LATENCY) == {
        "PERFORMANCE_HINT": ov.properties.hint.PerformanceMode.LATENCY
    }
    for hint in PerformanceHint:
        for precision in InferencePrecision:
            props = compile_properties(hint=hint, inference_precision=precision)
            assert props["PERFORMANCE_HINT"] == getattr(ov.properties.hint.PerformanceMode, hint.name)
            assert props["INFERENCE_PRECISION_HINT"] == getattr(ov.Type, precision.value)

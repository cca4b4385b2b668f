"""Device strings, the device choice (against a fake core, and what holds on any real core), properties."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

from daemon.config import InferencePrecision, PerformanceHint
from daemon.config.device import parse_device
from daemon.devices import Skipped, choose_device, compile_properties, execution_devices
from ovedge.errors import ConfigError, DeviceUnavailableError, ModelError

CORE = ov.Core()


@pytest.fixture(scope="module")
def model_xml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    param = ops.parameter([1, 8, 8, 3], ov.Type.f32, name="frame")
    model = ov.Model([ops.relu(param).output(0)], [param], "relu")
    xml = tmp_path_factory.mktemp("devices") / "model.xml"
    ov.save_model(model, xml)
    return xml


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


class FakeCore:
    """A stand-in for ``openvino.Core`` in the device-choice tests: a FAKE, because no Intel GPU or NPU
    exists on the machines that run these tests, and whether the GPU plugin loads depends on the
    OpenCL loader being installed. It answers the two questions :func:`choose_device` asks:
    ``available_devices`` and ``get_versions`` (which loads a device's plugin)."""

    def __init__(self, devices: list[str], broken_plugins: dict[str, str] | None = None) -> None:
        self.available_devices = devices
        self._broken = broken_plugins or {}
        self.plugins_loaded: list[str] = []

    def get_versions(self, device: str) -> dict[str, str]:
        self.plugins_loaded.append(device)
        if device in self._broken:
            raise RuntimeError(self._broken[device])
        return {device: "fake"}


# The shape of the error OpenVINO raises when the GPU plugin's dependencies are missing (any text
# ending in the dynamic loader's "cannot open shared object file" would do).
NO_OPENCL = (
    "Exception from src/inference/src/cpp/core.cpp:77:\n"
    'Cannot load library "/opt/libopenvino_intel_gpu_plugin.so": libOpenCL.so.1: cannot open shared object file'
)
CPU_ONLY = FakeCore(["CPU"])
WITH_GPU = FakeCore(["CPU", "GPU"])
WITH_NPU = FakeCore(["CPU", "NPU"])
GPU_PLUGIN_BROKEN = FakeCore(["CPU"], {"GPU": NO_OPENCL})
OPENCL_HINT = (
    "its OpenVINO plugin cannot be loaded because libOpenCL.so.1 is missing: install the Debian package "
    "ocl-icd-libopencl1 (and intel-opencl-icd, the Intel GPU compute runtime)"
)


def test_choose_cpu_on_any_core(caplog: pytest.LogCaptureFixture) -> None:
    """CPU where CPU is present: chosen as is, no fallback, nothing skipped, no warning."""
    for core in (CPU_ONLY, WITH_GPU, WITH_NPU, GPU_PLUGIN_BROKEN):
        with caplog.at_level(logging.WARNING):
            choice = choose_device(core, "cpu")
        assert (choice.device, choice.fell_back, choice.reason, choice.skipped) == ("CPU", False, None, ())
        assert choice.available == tuple(core.available_devices)
    assert caplog.records == []


@pytest.mark.parametrize(
    ("core", "device", "compiled"),
    [
        (WITH_GPU, "GPU", "GPU"),
        (WITH_GPU, "GPU.0", "GPU.0"),  # a lone GPU is listed without its index
        (FakeCore(["CPU", "GPU.0", "GPU.1"]), "GPU", "GPU"),
        (WITH_NPU, "NPU", "NPU"),
        (WITH_GPU, "AUTO:GPU,CPU", "AUTO:GPU,CPU"),
        (WITH_GPU, "HETERO:GPU,CPU", "HETERO:GPU,CPU"),
        (FakeCore(["CPU", "GPU", "NPU"]), "AUTO:NPU,GPU,CPU", "AUTO:NPU,GPU,CPU"),
        (CPU_ONLY, "AUTO", "AUTO"),
    ],
)
def test_present_devices_are_compiled_as_asked(core: FakeCore, device: str, compiled: str) -> None:
    """A device whose candidates are all present is compiled as written, with no note."""
    choice = choose_device(core, device)
    assert (choice.device, choice.notes, choice.skipped) == (compiled, (), ())


@pytest.mark.parametrize(
    ("core", "device", "compiled", "note"),
    [
        (CPU_ONLY, "AUTO:GPU,CPU", "AUTO:CPU", "AUTO:GPU,CPU: compiling AUTO:CPU (GPU not present)"),
        (WITH_NPU, "AUTO:GPU,NPU,CPU", "AUTO:NPU,CPU", "AUTO:GPU,NPU,CPU: compiling AUTO:NPU,CPU (GPU not present)"),
        (WITH_GPU, "AUTO:NPU,GPU", "AUTO:GPU", "AUTO:NPU,GPU: compiling AUTO:GPU (NPU not present)"),
        (
            GPU_PLUGIN_BROKEN,
            "AUTO:GPU,CPU",
            "AUTO:CPU",
            f"AUTO:GPU,CPU: compiling AUTO:CPU (GPU: {OPENCL_HINT})",
        ),
    ],
    ids=["gpu-absent", "npu-present", "gpu-present", "gpu-plugin-broken"],
)
def test_auto_is_compiled_on_its_present_candidates_only(
    caplog: pytest.LogCaptureFixture, core: FakeCore, device: str, compiled: str, note: str
) -> None:
    """AUTO hands OpenVINO only the candidates that are present, in the configured order, and warns
    which ones were skipped and why; a plugin that cannot be loaded counts as absent, and the note
    names the missing library and the Debian packages."""
    with caplog.at_level(logging.WARNING, logger="daemon.devices"):
        choice = choose_device(core, device)
    assert (choice.requested, choice.device, choice.fell_back) == (device, compiled, False)
    assert choice.notes == (note,)
    assert [r.getMessage() for r in caplog.records] == [note]


def test_broken_plugin_is_skipped_and_explained() -> None:
    """The GPU plugin failing to load: GPU is skipped with the plugin's reason; the plugin is probed once."""
    core = FakeCore(["CPU"], {"GPU": NO_OPENCL})
    choice = choose_device(core, "AUTO:GPU,CPU", ["HETERO:GPU.1,CPU", "CPU"])
    assert choice.device == "AUTO:CPU"
    assert choice.skipped == (Skipped("GPU", OPENCL_HINT),)
    assert core.plugins_loaded == ["GPU"]


def test_a_plugin_failing_otherwise_is_quoted_by_its_first_meaningful_line() -> None:
    """A plugin that fails for another reason: its error's first meaningful line, without OpenVINO's
    source locations."""
    core = FakeCore(["CPU"], {"NPU": "Exception from src/x.cpp:1:\nnpu driver too old\n"})
    choice = choose_device(core, "AUTO:NPU,CPU")
    assert choice.skipped == (Skipped("NPU", "its OpenVINO plugin cannot be loaded: npu driver too old"),)


def test_missing_gpu_names_device_found_plugin_and_what_to_check(tmp_path: Path) -> None:
    """GPU whose plugin cannot load, no fallback: one message with the device, what was found, the missing
    library and its package, the driver, /dev/dri and the groups; the error carries them as fields."""
    with pytest.raises(DeviceUnavailableError) as err:
        choose_device(GPU_PLUGIN_BROKEN, "GPU", dev_root=tmp_path)
    dri = tmp_path / "dri"
    assert str(err.value) == (
        f"device GPU is not available: OpenVINO found CPU (GPU: {OPENCL_HINT}); check for GPU: the Intel GPU "
        f"compute runtime (intel-opencl-icd, level-zero) is installed, {dri}/renderD* exists ({dri} is absent "
        "here), and the service user is in the 'render' and 'video' groups; "
        'or set model.fallback = ["CPU"] to run on the CPU meanwhile'
    )
    assert (err.value.device, err.value.available, err.value.fallbacks) == ("GPU", ("CPU",), ())
    assert err.value.absent == (("GPU", OPENCL_HINT),)
    assert isinstance(err.value, ModelError)


def test_missing_npu_message_and_present_dev_node(tmp_path: Path) -> None:
    """NPU absent (its plugin loads): names the NPU driver, /dev/accel and the render group; no 'absent'
    claim when the node folder exists."""
    (tmp_path / "accel").mkdir()
    with pytest.raises(DeviceUnavailableError) as err:
        choose_device(WITH_GPU, "NPU", dev_root=tmp_path)
    accel = tmp_path / "accel"
    assert str(err.value) == (
        "device NPU is not available: OpenVINO found CPU, GPU; check for NPU: the Intel NPU driver "
        f"(linux-npu-driver, intel-driver-compiler-npu) is installed, {accel}/accel0 exists, and the service "
        "user is in the 'render' group; "
        'or set model.fallback = ["CPU"] to run on the CPU meanwhile'
    )


def test_fallback_is_said(caplog: pytest.LogCaptureFixture) -> None:
    """GPU.1 absent with fallback [NPU, CPU]: falls back to the first usable one and logs why."""
    with caplog.at_level(logging.WARNING, logger="daemon.devices"):
        choice = choose_device(WITH_GPU, "GPU.1", ["NPU", "CPU"])
    assert (choice.device, choice.fell_back) == ("CPU", True)
    assert choice.reason == (
        "device GPU.1 is not available: OpenVINO found CPU, GPU (GPU.1 not present); falling back to CPU"
    )
    assert [r.getMessage() for r in caplog.records] == [choice.reason]


def test_fallback_is_reduced_to_its_present_candidates_too() -> None:
    """An AUTO fallback is compiled on its present candidates only, like the device itself."""
    choice = choose_device(GPU_PLUGIN_BROKEN, "NPU", ["AUTO:GPU,CPU"])
    assert (choice.device, choice.fell_back) == ("AUTO:CPU", True)
    assert [s.device for s in choice.skipped] == ["NPU", "GPU"]


def test_fallback_that_is_missing_too(tmp_path: Path) -> None:
    """When the fallback is absent as well, the error says so (and does not suggest a fallback)."""
    with pytest.raises(DeviceUnavailableError) as err:
        choose_device(CPU_ONLY, "NPU", ["GPU"], dev_root=tmp_path)
    assert str(err.value).startswith("device NPU is not available: OpenVINO found CPU; fallback GPU not available")
    assert "model.fallback" not in str(err.value)
    assert err.value.fallbacks == ("GPU",)


@pytest.mark.parametrize("device", ["AUTO:GPU", "HETERO:GPU,CPU", "AUTO:NPU,GPU"])
@pytest.mark.parametrize("core", [CPU_ONLY, GPU_PLUGIN_BROKEN], ids=["cpu-only", "gpu-plugin-broken"])
def test_virtual_devices_without_enough_present_fail(device: str, core: FakeCore, tmp_path: Path) -> None:
    """AUTO with no present candidate, or HETERO with any absent one, cannot run: refused with the check list."""
    refused = rf"^device {device} is not available: OpenVINO found CPU\b.*; check for "
    with pytest.raises(DeviceUnavailableError, match=refused):
        choose_device(core, device, dev_root=tmp_path)


def test_multi_is_accepted_with_deprecation_warning(caplog: pytest.LogCaptureFixture) -> None:
    """MULTI works but warns, naming AUTO's CUMULATIVE_THROUGHPUT mode as the replacement."""
    with caplog.at_level(logging.WARNING, logger="daemon.devices"):
        choice = choose_device(CPU_ONLY, "MULTI:CPU")
    expected = (
        'MULTI is deprecated by OpenVINO: use AUTO:CPU with hint = "cumulative_throughput" '
        "(AUTO's CUMULATIVE_THROUGHPUT mode) instead"
    )
    assert (choice.device, choice.notes) == ("MULTI:CPU", (expected,))
    assert [r.getMessage() for r in caplog.records] == [expected]


# -- on the real core: only what holds with and without the OpenCL loader, with or without an iGPU/NPU --


@pytest.mark.parametrize("device", ["CPU", "AUTO", "AUTO:GPU,CPU", "AUTO:NPU,GPU,CPU", "MULTI:CPU"])
def test_real_core_compiles_what_choose_device_picks(device: str, model_xml: Path) -> None:
    """Whatever this machine has, a device string with CPU among its candidates is usable: the chosen
    string compiles on the real core, names only devices OpenVINO lists, and the model runs there."""
    choice = choose_device(CORE, device)
    assert not choice.fell_back
    spec = parse_device(choice.device)
    listed = {d.partition(".")[0] for d in CORE.available_devices}
    assert {c.partition(".")[0] for c in spec.candidates} <= listed
    ran_on = execution_devices(CORE.compile_model(model_xml, choice.device))
    assert ran_on
    assert {d.strip("()").partition(".")[0] for d in ran_on} <= listed


@pytest.mark.parametrize("device", ["GPU", "NPU", "HETERO:GPU,CPU"])
def test_real_core_gpu_npu_run_or_fall_back(device: str, model_xml: Path) -> None:
    """GPU/NPU with fallback CPU on the real core: either the device is present and chosen, or the
    fallback is taken with a reason; never an exception, and the choice compiles."""
    choice = choose_device(CORE, device, ["CPU"])
    if choice.fell_back:
        assert (choice.device, choice.reason is not None) == ("CPU", True)
    else:
        assert choice.device == device
    CORE.compile_model(model_xml, choice.device)


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

from app import capabilities as caps

CPU_ONLY = {"torch_version": "2.13.0+cpu", "cuda_available": False, "devices": [], "triton_available": False}
GPU = {
    "torch_version": "2.13.0+cu128",
    "cuda_available": True,
    "devices": [{"index": 0, "name": "NVIDIA T4", "bf16": False}],
    "triton_available": False,
}


def test_cpu_only_torch_disables_gpu_toggles_with_the_reason():
    reasons = caps.unavailable_reasons(CPU_ONLY, "auto")
    assert set(caps.GPU_ONLY) <= set(reasons)
    assert "no CUDA" in reasons["enable_cuda_graphs"] and "2.13.0+cpu" in reasons["enable_cuda_graphs"]
    assert "enable_bf16" not in reasons


def test_gpu_without_bf16_or_triton():
    reasons = caps.unavailable_reasons(GPU, "auto")
    assert "enable_cuda_graphs" not in reasons
    assert "T4" in reasons["enable_bf16"]
    assert "triton" in reasons["enable_compile"]
    assert "CPU device is selected" in caps.unavailable_reasons(GPU, "cpu")["enable_fp16"]


def test_unknown_machine_and_compiler_probe():
    assert "Checking" in caps.unavailable_reasons(None, "auto")["enable_fp16"]
    no_compiler = {**CPU_ONLY, "compiler_available": False}
    assert "compiler" in caps.unavailable_reasons(no_compiler, "cpu")["enable_compile"]


def test_applicable_config_switches_off_only_unavailable_toggles():
    config = {"enable_fp16": True, "enable_flash_attention": True, "num_threads": 4}
    assert caps.applicable_config(config, {"enable_fp16": "x", "num_threads": "y"}) == {
        "enable_fp16": False,
        "enable_flash_attention": True,
        "num_threads": 4,
    }


def test_matching_preset_and_device_label():
    presets = {caps.PRESET_UNOPTIMIZED: {"a": False}, caps.PRESET_MAX_SPEED: {"a": True}}
    assert caps.matching_preset({"a": True, "b": 1}, presets) == caps.PRESET_MAX_SPEED
    assert caps.matching_preset({"a": 3}, presets) == caps.PRESET_CUSTOM
    assert caps.device_label(GPU, "cuda:0") == "CUDA 0 · NVIDIA T4"
    assert caps.device_label(GPU, "cpu") == "CPU"
    assert caps.resolve_device(GPU, "auto") == "cuda:0"
    assert caps.resolve_device(CPU_ONLY, "auto") == "cpu"

"""GPU -> torch build decision over recorded nvidia-smi outputs (Windows drivers, torch 2.11 matrix)."""
from pathlib import Path

import pytest

import gpu_select
from gpu_select import Gpu, decide, parse_banner, parse_query_csv, select_build

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def smi(name):
    return (FIXTURES / "nvidia_smi" / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("query, tag, triton", [
    ("rtx5090_query.txt", "cu128", True),              # sm_120 needs cu128
    ("rtx4090_query.txt", "cu128", True),              # driver 581 allows cu128
    ("rtx4090_driver566_query.txt", "cu126", True),    # 566.36 < 570.65: cu126 still runs sm_89 via sm_86
    ("rtx3060_query.txt", "cu128", True),
    ("rtx3060_driver537_query.txt", "cpu", False),     # older than 560.76: update the driver
    ("gtx1080_query.txt", "cu126", False),             # Pascal: not in cu128; no triton below sm_75
    ("titanv_query.txt", "cu126", False),              # Volta dropped from cu128 in torch 2.11
])
def test_query_decisions(query, tag, triton):
    d = decide(smi(query), None)
    assert (d.tag, d.triton) == (tag, triton)
    assert d.gpu is not None and d.gpu.name in smi(query)


def test_rtx5090_details():
    d = decide(smi("rtx5090_query.txt"), smi("rtx5090_banner.txt"))
    assert d.gpu == Gpu("NVIDIA GeForce RTX 5090", (576, 88), (12, 0))
    assert d.torch_spec == "torch==2.11.0+cu128"
    assert d.index_url == "https://download.pytorch.org/whl/cu128"
    assert "sm_120" in d.reason and d.warnings == ()


def test_old_driver_falls_back_to_banner_and_cpu():
    """Drivers before R510 reject the compute_cap field; the banner still gives the driver version."""
    assert parse_query_csv(smi("gtx1080_driver472_query.txt")) == []
    d = decide(smi("gtx1080_driver472_query.txt"), smi("gtx1080_driver472_banner.txt"))
    assert d.tag == "cpu" and d.index_url is None and d.torch_spec == "torch==2.11.0"
    assert d.gpu == Gpu("NVIDIA GeForce ...", (472, 12), None)
    assert "570.65" in d.reason and "Repair" in d.reason


@pytest.mark.parametrize("query, banner", [(None, None), (smi("no_driver.txt"), smi("no_driver.txt")), ("", "")])
def test_no_nvidia_gpu_is_cpu(query, banner):
    d = decide(query, banner)
    assert (d.tag, d.gpu, d.triton) == ("cpu", None, False)


def test_driver_too_old_names_the_needed_version():
    d = decide(smi("rtx3060_driver537_query.txt"), None)
    assert "560.76" in d.reason and "537.58" in d.reason


def test_mixed_gpus_use_the_newest_and_warn_about_the_other():
    d = decide(smi("rtx5090_gtx1080ti_query.txt"), None)
    assert d.tag == "cu128" and d.gpu.name == "NVIDIA GeForce RTX 5090"
    assert len(d.warnings) == 1 and "GTX 1080 Ti" in d.warnings[0]


def test_banner_parses_new_and_old_layouts():
    assert parse_banner(smi("rtx5090_banner.txt")) == [Gpu("NVIDIA GeForce RTX 5090", (576, 88), None)]
    assert parse_banner(smi("no_driver.txt")) == []


def test_unsupported_architecture_is_cpu():
    kepler = Gpu("NVIDIA GeForce GTX 780", (576, 88), (3, 5))
    assert select_build([kepler]).tag == "cpu"
    assert "not supported" in select_build([kepler]).reason


def test_future_major_arch_is_not_assumed_to_work():
    """No PTX in the Windows wheels: an sm_130 card must not be sent to cu128."""
    assert select_build([Gpu("future", (700, 1), (13, 0))]).tag == "cpu"


@pytest.mark.parametrize("choice", ["cpu", "cu126", "cu128"])
def test_forced_choice_wins(choice):
    d = select_build(parse_query_csv(smi("rtx5090_query.txt")), choice)
    assert d.tag == choice


def test_forced_cu126_on_blackwell_warns():
    d = select_build(parse_query_csv(smi("rtx5090_query.txt")), "cu126")
    assert d.warnings and "sm_120" in d.warnings[0]


def test_forced_cuda_without_gpu_warns_and_skips_triton():
    d = select_build([], "cu128")
    assert d.tag == "cu128" and not d.triton and "no NVIDIA GPU" in d.warnings[0]


def test_bad_choice_raises():
    with pytest.raises(ValueError):
        select_build([], "rocm")


def test_driver_minimums_match_cuda_release_notes():
    """CUDA Toolkit Release Notes, Windows column: 12.8 GA >= 570.65, 12.6 GA >= 560.76."""
    mins = {b.tag: b.min_driver for b in gpu_select.CUDA_BUILDS}
    assert mins == {"cu128": (570, 65), "cu126": (560, 76)}
    assert decide("NVIDIA GeForce RTX 5080, 570.65, 12.0", None).tag == "cu128"
    assert decide("NVIDIA GeForce RTX 5080, 570.64, 12.0", None).tag == "cpu"

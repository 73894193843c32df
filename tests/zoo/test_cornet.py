"""CORnet's recurrences behave as the papers describe (small random networks, mechanics only)."""

from __future__ import annotations

import torch

from memprobe.zoo.cornet import cornet_r, cornet_rt, cornet_s


def _two_images():
    generator = torch.Generator().manual_seed(0)
    return torch.rand(1, 3, 224, 224, generator=generator), torch.rand(1, 3, 224, 224, generator=generator)


def test_rt_unrolls_biologically_and_r_does_not():
    """CORnet-RT passes one area per time step, so the image reaches IT only at t = 3 (V1 t0, V2 t1,
    V4 t2, IT t3); CORnet-R (legacy) passes it through all areas within each step."""
    torch.manual_seed(0)
    a, b = _two_images()
    with torch.no_grad():
        rt3, rt4 = cornet_rt(times=3).eval(), cornet_rt(times=4).eval()
        rt4.load_state_dict(rt3.state_dict())
        assert torch.equal(rt3(a), rt3(b))  # IT never saw the image
        assert not torch.allclose(rt4(a), rt4(b))
        r2 = cornet_r(times=2).eval()
        r2.load_state_dict(rt3.state_dict())
        assert not torch.allclose(r2(a), r2(b))
        # One time step is the same feedforward pass for both.
        r1, rt1 = cornet_r(times=1).eval(), cornet_rt(times=1).eval()
        r1.load_state_dict(rt3.state_dict())
        rt1.load_state_dict(rt3.state_dict())
        assert torch.equal(r1(a), rt1(a))


def test_recurrent_areas_are_called_once_per_step_at_their_resolution():
    network = cornet_rt(times=5).eval()
    shapes: dict[str, list[tuple[int, ...]]] = {}
    for area in ("V1", "V2", "V4", "IT"):
        getattr(network, area).output.register_forward_hook(
            lambda module, args, output, area=area: shapes.setdefault(area, []).append(tuple(output.shape))
        )
    with torch.no_grad():
        network(torch.rand(2, 3, 224, 224))
    expected = {"V1": (2, 64, 56, 56), "V2": (2, 128, 28, 28), "V4": (2, 256, 14, 14), "IT": (2, 512, 7, 7)}
    assert shapes == {area: [shape] * 5 for area, shape in expected.items()}


def test_cornet_s_repeats_its_bottleneck_and_downsamples_on_the_first_pass_only():
    network = cornet_s().eval()
    calls: dict[str, list[tuple[int, ...]]] = {}
    for area in ("V2", "V4", "IT"):
        getattr(network, area).conv2.register_forward_hook(
            lambda module, args, output, area=area: calls.setdefault(area, []).append(tuple(output.shape[2:]))
        )
    with torch.no_grad():
        network(torch.rand(1, 3, 224, 224))
    assert calls == {"V2": [(28, 28)] * 2, "V4": [(14, 14)] * 4, "IT": [(7, 7)] * 2}
    assert {f"norm1_{t}" for t in range(4)} <= {name for name, _ in network.V4.named_children()}

import torch

from benchmark.perf.train_speed import measured_runs, render_markdown, run_perf

# tutorial-mlp, per image: forward MACs 794x400 + 2x(400x20) + 30x400 + 400x784 = 659,200; backward
# computes every weight gradient (659,200 MACs) and every input gradient but the first layer's
# (659,200 - 794x400 = 341,600 MACs); 2 FLOPs per MAC.
TUTORIAL_MLP_FLOPS = 2 * (659_200 + 659_200 + 341_600)


def test_perf_measures_every_run_and_reports_it(shared_data, monkeypatch):
    monkeypatch.setenv("BENCH_DATA_DIR", str(shared_data))  # the side-by-side workers read it
    # one preset: every run of the table goes through the same code for each (the conv one adds only time)
    result = run_perf(n_images=256, pack=2, device="cpu", presets=("tutorial-mlp",))
    assert [row["backbone"] for row in result["rows"]] == ["tutorial-mlp"]
    assert result["matmul_peak"] > 1e9
    mlp = result["rows"][0]
    assert mlp["flops_per_image"] == TUTORIAL_MLP_FLOPS
    text = render_markdown(result)
    for row in result["rows"]:
        runs = measured_runs(row)
        assert (row["side_by_side_ips"] is not None) == (torch.get_num_threads() > 1)
        assert len(runs) == 5 + (row["side_by_side_ips"] is not None)
        assert row["kernel_ceiling_ips"] > 0  # a profile estimate: no timing comparison in a test
        assert f"(b) reaches {100 * row['trainer_ips'] / row['kernel_ceiling_ips']:.0f}% of it." in text
        for label, ips in runs:
            assert ips > 0
            percent = 100 * row["flops_per_image"] * ips / result["matmul_peak"]
            line = f"| {row['backbone']} | {label} | {ips:,.0f} | {ips / row['baseline_ips']:.2f}x | {percent:.0f}% |"
            assert line in text
    assert "Data set held once in memory as uint8: 52.3 MiB" in text

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


def test_a_real_cell_is_timed_beside_the_trainer_on_the_same_training(shared_data, monkeypatch, tmp_path):
    """`bench perf cell`: (p) and (r) train the same cell (equal losses epoch for epoch), so their images/s
    are figures of one computation; the real cell's wall time is accounted for without overlap."""
    from benchmark.grid.spec import build_grid
    from benchmark.perf.cell_speed import QUICK_EVAL, measure_cells
    from benchmark.perf.cell_speed import render_markdown as render_cells

    monkeypatch.setenv("BENCH_DATA_DIR", str(shared_data))
    base = {
        "dataset": "mnist",
        "binarize": "fixed",
        "val_size": 300,
        "train_size": 500,
        "backbone": "mlp",
        "hidden": [32],
        "latent_dim": 4,
        "recon_loss": "bce",
        "batch_size": 100,
        "epochs": 2,
    }
    eval_settings = dict(item.removeprefix("eval.").split("=") for item in QUICK_EVAL)
    eval_settings = {k: v == "true" if v in ("true", "false") else int(v) for k, v in eval_settings.items()}
    grid = build_grid({"name": "speed", "base": base, "axes": {}, "seeds": [0], "eval": eval_settings}, "speed.yaml")
    (speed,) = measure_cells(grid, list(grid.cells), workers=1)
    assert speed.same_training
    assert [e["epoch"] for e in speed.real_log] == [1, 2]
    assert speed.perf_ips > 0 and speed.real_ips > 0 and speed.real_epoch_ips > 0
    assert speed.real_epoch_ips < speed.real_ips  # whole epochs include the validation pass
    parts = speed.breakdown()
    assert all(seconds >= 0 for seconds in parts.values()), parts
    assert parts["evaluation (reduced protocol)"] > 0 and parts["validation and learning curve"] > 0
    text = render_cells(grid, [speed], workers=1)
    assert f"| seed=0 | {speed.perf_ips:,.0f} | {speed.real_ips:,.0f} |" in text


def test_the_layout_benchmark_times_one_computation_in_two_layouts():
    """`bench perf layout`: a conv cell's model is built channels_last (what the trainer and the checkpoint
    loader get); both layouts train from the same weights on the same batch (first losses equal up to float
    rounding: 3.9e-6 relative measured at 64 px; the bound is 25x that); the report prints the measured ratio."""
    from benchmark.conditions import prepare_conditions
    from benchmark.config import CellConfig
    from benchmark.perf import layout_speed
    from benchmark.training.trainer import build_seeded_model, cell_data

    config = CellConfig(dataset="synthetic", backbone="conv", base_channels=8, latent_dim=4, train_size=256)
    threads_before = torch.get_num_threads()
    result = layout_speed.measure_layouts(config, steps=1, repeats=2, threads=1)
    assert {k: len(v) for k, v in result["rates"].items()} == {"contiguous": 2, "channels_last": 2}
    first = result["first_loss"]
    assert abs(first["channels_last"] - first["contiguous"]) <= 1e-4 * abs(first["contiguous"])
    assert result["channels_last_weights"] == {"contiguous": False, "channels_last": True}
    assert torch.get_num_threads() == threads_before
    model = build_seeded_model(config, prepare_conditions(config, cell_data(config)), torch.device("cpu"))
    convolution = next(p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1)  # not the grey input's
    assert convolution.is_contiguous(memory_format=torch.channels_last) and not convolution.is_contiguous()
    text = layout_speed.render_markdown(result, "latent_dim=4")
    assert "| contiguous |" in text and "| channels_last |" in text and "channels_last / contiguous: **" in text
    assert "| aten::convolution_backward |" in text and "| total |" in text

"""Issue 16 (item 3): a plain PyTorch loop against ``fit`` on one GPU, with the loader or device-resident data, fp32
or bf16-mixed, at the default model and at hidden 256 / batch 1024 (lookback 168, horizon 24, LSTM x 2).

    python scripts/benchmark_gpu.py            # one GPU, about 3-6 minutes; prints one markdown table
    python scripts/benchmark_gpu.py --quick    # CPU or GPU, tiny sizes, seconds: checks every arm (CI calls it)

Every arm trains the same LSTMRegressor (AdamW 1e-3, norm clipping at 1.0) on one synthetic hourly series (daily and
weekly sines with noise, 70/10/20 split) for ``--warmup`` steps not timed, then ``--steps`` timed steps (the device
synchronised at both ends). ``fit`` is ``LSTMForecaster`` + ``TimeSeriesDataModule`` in a ``Trainer`` with TensorBoard
logging every 10 steps, the LR monitor and the loss-spike callback deciding on the device; ``plain`` is the
hand-written loop. Columns: steps/s, windows/s, peak GPU memory (``torch.cuda.max_memory_allocated``), the validation
MSE after training (under the arm's precision: cuDNN's LSTM runs in reduced precision under autocast) and host reads
per optimizer step outside logging steps (:class:`~lightning_lstm.runtime.host_syncs.HostSyncCounter`).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lightning_lstm.data.device_windows import DeviceWindows  # noqa: E402
from lightning_lstm.runtime.host_syncs import HostSyncCounter  # noqa: E402

SHAPES = {"default": (64, 128), "large": (256, 1024)}  # hidden size, batch size
LOOKBACK, HORIZON, LAYERS, LR, CLIP, LOG_EVERY = 168, 24, 2, 1e-3, 1.0, 10


def write_series(path: Path, rows: int) -> Path:
    t = np.arange(rows, dtype=np.float64)
    noise = 0.1 * np.random.default_rng(0).standard_normal(rows)
    np.save(path, (np.sin(2 * np.pi * t / 24) + 0.5 * np.sin(2 * np.pi * t / 168) + noise).astype(np.float32)[:, None])
    return path


def datamodule(path: Path, batch: int, lookback: int, device_resident: bool):
    from lightning_lstm.data.datamodule import TimeSeriesDataModule

    return TimeSeriesDataModule(
        path=str(path), time_column=None, target_columns=["0"], lookback=lookback, horizon=HORIZON,
        val_fraction=0.1, test_fraction=0.2, window_norm="none", batch_size=batch, missing="error",
        device_resident=device_resident,
    )  # fmt: skip


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


@torch.no_grad()
def val_loss(net: torch.nn.Module, data, device: torch.device, precision: str) -> float:
    net.eval()
    total, count = torch.zeros((), device=device), 0
    for batch in data.val_dataloader():
        x, y = batch["x"].to(device), batch["y"].to(device)  # (B, L, 1), (B, H, 1)
        with autocast(device, precision):
            prediction = net(x)  # (B, H, 1)
        total += torch.nn.functional.mse_loss(prediction.float(), y, reduction="sum") / y[0].numel()
        count += len(y)
    return float(total) / max(count, 1)


def batches(data, device: torch.device):
    """Endless training batches on ``device``: device-resident gathers, or the loader's with a non-blocking copy."""
    loader = data.train_dataloader()
    if isinstance(loader, DeviceWindows):  # no trainer to name the device: gather on this one
        loader = DeviceWindows(loader.loader, device)
    epoch = 0
    while True:
        loader.sampler.set_epoch(epoch)
        for batch in loader:
            yield {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        epoch += 1


def run_plain(data, device, hidden: int, precision: str, warmup: int, steps: int) -> dict:
    from lightning_lstm.model.param_groups import weight_decay_groups
    from lightning_lstm.model.regressor import LSTMRegressor

    data.setup("fit")
    data.trainer = None
    net = LSTMRegressor(1, 1, HORIZON, hidden, LAYERS).to(device).train()
    optimizer = torch.optim.AdamW(weight_decay_groups(net), lr=LR)
    counter, stream = HostSyncCounter(), batches(data, device)
    counter.install()
    try:
        for step in range(warmup + steps):
            if step == warmup:
                synchronize(device)
                start = time.perf_counter()
            batch = next(stream)
            counter.arm(step)
            optimizer.zero_grad(set_to_none=True)
            with autocast(device, precision):
                loss = torch.nn.functional.mse_loss(net(batch["x"]).float(), batch["y"])  # (B, H, 1) vs (B, H, 1)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), CLIP)
            counter.disarm()
            optimizer.step()
        synchronize(device)
        elapsed = time.perf_counter() - start
    finally:
        counter.uninstall()
    return {"seconds": elapsed, "syncs": counter, "val_loss": val_loss(net, data, device, precision)}


def run_fit(data, device, hidden: int, precision: str, warmup: int, steps: int, root: Path) -> dict:
    import lightning.pytorch as pl
    from lightning.pytorch.callbacks import LearningRateMonitor
    from lightning.pytorch.loggers import TensorBoardLogger

    from lightning_lstm.model.module import LSTMForecaster
    from lightning_lstm.spikes import LossSpikeCallback

    class Clock(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            if trainer.global_step == warmup:
                synchronize(device)
                self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if trainer.global_step == warmup + steps:  # the last update: before the end-of-fit reports
                synchronize(device)
                self.seconds = time.perf_counter() - self.start

    model = LSTMForecaster(horizon=HORIZON, hidden_size=hidden, num_layers=LAYERS, scheduler=None,
                           optimizer=lambda params: torch.optim.AdamW(params, lr=LR))  # fmt: skip
    clock, counter = Clock(), HostSyncCounter()
    trainer = pl.Trainer(
        default_root_dir=root, logger=TensorBoardLogger(root), log_every_n_steps=LOG_EVERY, max_steps=warmup + steps,
        max_epochs=-1, limit_val_batches=0, num_sanity_val_steps=0, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, gradient_clip_val=CLIP, devices=1,
        accelerator=device.type, precision="bf16-mixed" if precision == "bf16" else "32-true",
        callbacks=[LossSpikeCallback(on_device=True), LearningRateMonitor(), counter, clock],
    )  # fmt: skip
    trainer.fit(model, data)
    return {"seconds": clock.seconds, "syncs": counter, "val_loss": val_loss(model.net, data, device, precision)}


def quiet_syncs(counter: HostSyncCounter, warmup: int, steps: int) -> float:
    quiet = [s for s in range(warmup, warmup + steps) if (s + 1) % LOG_EVERY]
    return statistics.mean(counter.counts(quiet)) if quiet else float("nan")


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny sizes on any device (numbers meaningless)")
    parser.add_argument("--steps", type=int, default=300, help="timed optimizer steps per arm")
    parser.add_argument("--warmup", type=int, default=30, help="untimed steps first (cuDNN plans, allocator)")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    shapes, lookback, rows = dict(SHAPES), LOOKBACK, 60_000
    if args.quick:
        shapes, lookback, rows, args.steps, args.warmup = {"tiny": (8, 16)}, 24, 2_000, 12, 2
        torch.set_num_threads(1)
    elif device.type != "cuda":
        print("no GPU: the full run is meant for one (use --quick on a CPU)", file=sys.stderr)
    rows_out = []
    with tempfile.TemporaryDirectory() as folder:
        path = write_series(Path(folder) / "series.npy", rows)
        for shape, (hidden, batch) in shapes.items():
            for arm in ("plain", "fit"):
                for resident in (False, True):
                    for precision in ("fp32", "bf16"):
                        pl_seed(0)
                        if device.type == "cuda":
                            torch.cuda.reset_peak_memory_stats(device)
                        data = datamodule(path, batch, lookback, resident)
                        # oneDNN's CPU LSTM has no bf16 kernel: the native one runs under autocast on a CPU.
                        flags = torch.backends.mkldnn.flags(enabled=device.type == "cuda" or precision == "fp32")
                        with flags:
                            if arm == "plain":
                                result = run_plain(data, device, hidden, precision, args.warmup, args.steps)
                            else:
                                result = run_fit(data, device, hidden, precision, args.warmup, args.steps,
                                                 Path(folder) / f"{shape}-{resident}-{precision}")  # fmt: skip
                        peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
                        rate = args.steps / result["seconds"]
                        rows_out.append({
                            "shape": shape, "hidden": hidden, "batch": batch, "arm": arm, "precision": precision,
                            "data": "device-resident" if resident else "loader", "steps_per_s": rate,
                            "windows_per_s": rate * batch, "peak_mib": peak, "val_loss": result["val_loss"],
                            "syncs_per_step": quiet_syncs(result["syncs"], args.warmup, args.steps),
                        })  # fmt: skip
                        print(f"{shape} {arm} {rows_out[-1]['data']} {precision}: "
                              f"{rows_out[-1]['steps_per_s']:.1f} steps/s", file=sys.stderr)  # fmt: skip
    print(table(rows_out, device, args, lookback))
    return rows_out


def pl_seed(seed: int) -> None:
    import lightning.pytorch as pl

    pl.seed_everything(seed, verbose=False)


def table(rows: list[dict], device: torch.device, args: argparse.Namespace, lookback: int) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    lines = [
        f"{name}, torch {torch.__version__}; lookback {lookback}, horizon {HORIZON}, LSTM x {LAYERS}; {args.warmup} "
        f"warm-up + {args.steps} timed steps per arm{' (--quick: numbers meaningless)' if args.quick else ''}.\n",
        "| model (hidden / batch) | arm | data | precision | steps/s | windows/s | x plain | peak GPU MiB | val MSE "
        "| host reads/step |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    plain = {(r["shape"], r["data"], r["precision"]): r["steps_per_s"] for r in rows if r["arm"] == "plain"}
    for r in rows:
        ratio = plain[(r["shape"], r["data"], r["precision"])] / r["steps_per_s"]
        peak = "-" if r["peak_mib"] is None else f"{r['peak_mib']:,.0f}"
        lines.append(
            f"| {r['hidden']} / {r['batch']} | {r['arm']} | {r['data']} | {r['precision']} | {r['steps_per_s']:,.1f} "
            f"| {r['windows_per_s']:,.0f} | {ratio:.2f} | {peak} | {r['val_loss']:.5g} | {r['syncs_per_step']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

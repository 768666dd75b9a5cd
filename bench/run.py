"""Speed of the shared training path, as ratios measured in one run: ``make bench``.

Writes ``bench/results.json`` and the table of ``book/performance.md``. Absolute times on shared
machines are noise; every number that matters here is a ratio of two measurements taken back to back in
this process (or its children), on the same model, data, batch, optimizer and threads.

Sections: loop overhead (lib.train.fit vs a hand-written loop), hardware efficiency (training FLOP/s vs a
measured fp32 matmul peak), data path (decode-once tensors vs decoding every step), parallel seeds
(1 process × 2 threads vs 2 processes × 1 thread), torch.compile, memory format and batch size, and
memory layout × precision (NCHW / channels_last × fp32 / bf16 autocast) for every backbone the book trains.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from lib.data import ImageData, crop_flip, normalize
from lib.models import MobileNetV2, MobileNeXt, ResNetCIFAR, SegmentationNet
from lib.repro.sections import publish
from lib.repro.store import environment
from lib.train import TrainConfig, epoch_generator, fit, seed_everything

ROOT = pathlib.Path(__file__).resolve().parents[1]
BACKBONES = {
    "MobileNetV2-0.5": lambda: MobileNetV2(num_classes=10, width_mult=0.5),
    "ResNet-20": lambda: ResNetCIFAR(depth=20, num_classes=10),
}
# Every backbone a chapter trains, with its input shape: (build, (C, H, W), labels per image are dense?)
TRAINED_BACKBONES = {
    "ResNet-8 (isda, decoupling-lt)": (lambda: ResNetCIFAR(depth=8, num_classes=10), (3, 32, 32), False),
    "ResNet-20": (lambda: ResNetCIFAR(depth=20, num_classes=10), (3, 32, 32), False),
    "MobileNetV2-0.5 (coord-attention, triplet-attention, mobilenetv2)":
        (lambda: MobileNetV2(num_classes=10, width_mult=0.5), (3, 32, 32), False),
    "MobileNeXt-0.45 (mobilenext-sandglass)": (lambda: MobileNeXt(num_classes=10, width_mult=0.45), (3, 32, 32), False),
    "SegmentationNet (strip-pooling, CamVid 96×128)": (lambda: SegmentationNet(num_classes=11), (3, 96, 128), True),
}
# The bench backbone each chapter's reduced preset trains (a chapter whose arms use two backbones lists both); the
# preset's `channels_last` and `precision` must be that backbone's fastest measured cell (tests/test_presets.py).
CHAPTER_BACKBONES = {
    "coord-attention": ["MobileNetV2-0.5 (coord-attention, triplet-attention, mobilenetv2)"],
    "triplet-attention": ["MobileNetV2-0.5 (coord-attention, triplet-attention, mobilenetv2)"],
    "mobilenetv2": ["MobileNetV2-0.5 (coord-attention, triplet-attention, mobilenetv2)"],
    "mobilenext-sandglass": ["MobileNeXt-0.45 (mobilenext-sandglass)",
                             "MobileNetV2-0.5 (coord-attention, triplet-attention, mobilenetv2)"],
    "isda": ["ResNet-8 (isda, decoupling-lt)"],
    "ols": ["ResNet-8 (isda, decoupling-lt)"],      # the losses bench: ISDA's main regime
    "tf-kd": ["ResNet-8 (isda, decoupling-lt)"],    # the losses bench
    "bias-loss": ["ResNet-8 (isda, decoupling-lt)"],   # the losses bench: ISDA's main regime
    "cam-loss": ["ResNet-8 (isda, decoupling-lt)"],  # the losses bench: ISDA's main regime
    "decoupling-lt": ["ResNet-8 (isda, decoupling-lt)"],
    "strip-pooling": ["SegmentationNet (strip-pooling, CamVid 96×128)"],
}
LAYOUT_PRECISION = (("NCHW", "fp32"), ("channels_last", "fp32"), ("NCHW", "bf16"), ("channels_last", "bf16"))


def synthetic(n: int, seed: int = 0) -> ImageData:
    g = torch.Generator().manual_seed(seed)
    return ImageData(torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.arange(n) % 10,
                     [str(i) for i in range(10)], "synthetic", "train")


def raw_loop_images_per_s(model, data: ImageData, batch: int, epochs: int, channels_last: bool) -> float:
    """The loop a user would write by hand: same augmentation, normalisation, optimizer and schedule."""
    mean, std = data.channel_stats()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = len(data) // batch
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * steps)
    model.train()
    seen, elapsed = 0, 0.0
    for epoch in range(epochs):
        g = epoch_generator(0, epoch)
        order = torch.randperm(len(data), generator=g)
        tick = time.perf_counter()
        for step in range(steps):
            idx = order[step * batch:(step + 1) * batch]
            x = normalize(crop_flip(data.images[idx], g), mean, std)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loss = F.cross_entropy(model(x), data.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        elapsed += time.perf_counter() - tick
        seen += steps * batch
    return seen / elapsed


def fit_images_per_s(model, data: ImageData, batch: int, epochs: int, channels_last: bool) -> float:
    config = TrainConfig(epochs=epochs, batch_size=batch, channels_last=channels_last, eval_every=10_000)
    out = fit(model, data, synthetic(batch), config, seed=0, progress=False)
    return out["train_images_per_s"]


def loop_overhead(threads: int, repeats: int = 3) -> dict:
    data = synthetic(1536)
    ratios, fit_ips, raw_ips = [], [], []
    for _ in range(repeats):  # alternate to spread drifts of the machine over both loops
        seed_everything(0, threads)
        raw_ips.append(raw_loop_images_per_s(BACKBONES["MobileNetV2-0.5"](), data, 128, 1, True))
        seed_everything(0, threads)
        fit_ips.append(fit_images_per_s(BACKBONES["MobileNetV2-0.5"](), data, 128, 1, True))
        ratios.append(fit_ips[-1] / raw_ips[-1])
    ratios.sort()
    return {"fit_images_per_s": fit_ips, "raw_images_per_s": raw_ips, "ratio_median": ratios[len(ratios) // 2]}


def sgemm_peak(threads: int, n: int = 2048, repeats: int = 5) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        tick = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - tick)
    return 2 * n**3 / best


def train_step_flops(model, batch: int) -> int:
    """3 × the forward FLOPs (forward, gradient w.r.t. inputs, gradient w.r.t. weights).

    FlopCounterMode's count of the backward pass treats grouped (depthwise) convolutions as dense and
    overstates MobileNetV2's training FLOPs several-fold, so the usual 3× forward convention is used.
    """
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(batch, 3, 32, 32))
    model.train()
    return 3 * int(counter.get_total_flops())


def step_images_per_s(model, batch: int, channels_last: bool, steps: int = 6, compiled=None) -> float:
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    step_model = compiled if compiled is not None else model
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    return batch / _median_step_s(step_model, opt, x, y, steps, "fp32")


def _median_step_s(model, opt, x, y, steps: int, precision: str) -> float:
    """Median seconds of one forward + backward + SGD step over ``steps`` steps after two warm-up steps."""
    times = []
    for i in range(steps + 2):
        tick = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            out = model(x)
        loss = F.cross_entropy(out.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i >= 2:
            times.append(time.perf_counter() - tick)
    times.sort()
    return times[len(times) // 2]


def step_throughput(build, shape: tuple, dense: bool, batch: int, channels_last: bool, precision: str,
                    steps: int = 5) -> float:
    """Images/s of forward + backward + SGD step; bf16 is CPU autocast (BatchNorm and the loss stay fp32)."""
    torch.manual_seed(0)
    model = build()
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, *shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch, *shape[1:]) if dense else (batch,))
    return batch / _median_step_s(model, opt, x, y, steps, precision)


def layout_and_precision(threads: int = 1, batch: int = 128, rounds: int = 2) -> dict:
    """The four {NCHW, channels_last} × {fp32, bf16} cells per backbone, as ratios to NCHW fp32.

    One thread (as each parallel seed worker trains); the four cells alternate within each round so that a
    drift of the machine spreads over all of them; the ratio of each round is kept, and the fastest cell is
    the one with the best median ratio.
    """
    torch.set_num_threads(threads)
    out = {}
    for name, (build, shape, dense) in TRAINED_BACKBONES.items():
        b = batch if shape[1] <= 32 else 16
        per_round = []
        for _ in range(rounds):
            ips = {f"{layout} {precision}": step_throughput(build, shape, dense, b, layout == "channels_last", precision)
                   for layout, precision in LAYOUT_PRECISION}
            per_round.append(ips)
        cells = {}
        for key in per_round[0]:
            ratios = sorted(r[key] / r["NCHW fp32"] for r in per_round)
            cells[key] = {"images_per_s": [r[key] for r in per_round], "ratios": ratios,
                          "ratio_median": ratios[len(ratios) // 2] if len(ratios) % 2 else sum(ratios) / len(ratios)}
        fastest = max(cells, key=lambda k: cells[k]["ratio_median"])
        out[name] = {"batch": b, "input": list(shape), "cells": cells, "fastest": fastest,
                     "chapters": sorted(c for c, names in CHAPTER_BACKBONES.items() if name in names)}
    return out


def epoch_profile(epochs: int = 2, images: int = 5120, batch: int = 128) -> dict:
    """Where a training epoch of ``fit`` goes, at one thread, per backbone in its fastest layout and precision.

    ``fit`` reports each epoch's training time (indexing, augmentation, normalisation, forward, backward, step,
    metric sums) and the whole run's wall time (adding evaluation, checkpoints and set-up). Timing forward +
    backward + step alone on the same batches gives the share of the epoch spent outside them.
    """
    torch.set_num_threads(1)
    data, test = synthetic(images), synthetic(1000, seed=1)
    out = {}
    for name, (build, shape, dense) in TRAINED_BACKBONES.items():
        if dense:
            continue   # the segmentation net trains through fit's dense-label hooks; its step is profiled above
        channels_last, precision = True, ("bf16" if name.startswith("ResNet") else "fp32")
        config = TrainConfig(epochs=epochs, batch_size=batch, channels_last=channels_last, precision=precision,
                             eval_every=epochs)
        seed_everything(0, 1)
        result = fit(build(), data, test, config, seed=0, progress=False)
        epoch_s = sorted(h["epoch_time_s"] for h in result["history"])[0]
        step_s = batch / step_throughput(build, shape, dense, batch, channels_last, precision, steps=6)
        steps = images // batch
        out[name] = {"layout": "channels_last", "precision": precision, "epoch_s": epoch_s,
                     "forward_backward_step_s": steps * step_s,
                     "fraction_outside_step": max(0.0, 1 - steps * step_s / epoch_s),
                     "evaluation_and_setup_s": result["wall_time_s"] - result["train_time_s"]}
    return out


def hardware_efficiency(threads: int) -> dict:
    torch.set_num_threads(threads)
    peak = sgemm_peak(threads)
    out = {"sgemm_peak_gflops": peak / 1e9, "backbones": {}}
    for name, build in BACKBONES.items():
        model = build()
        flops_per_image = train_step_flops(model, 8) / 8
        ips = step_images_per_s(model, 128, channels_last=True)
        out["backbones"][name] = {"train_flops_per_image": flops_per_image, "images_per_s": ips,
                                  "achieved_gflops": flops_per_image * ips / 1e9,
                                  "fraction_of_peak": flops_per_image * ips / peak}
    return out


def data_path(root: str | None) -> dict:
    """Epoch over 10k CIFAR-10 images: index decoded uint8 tensors vs decode JPEGs every step."""
    if not root:
        return {"skipped": "REPRO_DATA not set"}
    import datasets

    from lib.data import load

    datasets.disable_progress_bars()
    data = load("cifar10", "test")
    g = torch.Generator().manual_seed(0)
    tick = time.perf_counter()
    for idx in torch.randperm(len(data), generator=g).split(128):
        normalize(crop_flip(data.images[idx], g), torch.zeros(3), torch.ones(3))
    tensor_s = time.perf_counter() - tick
    ds = datasets.load_dataset("parquet", data_files=str(pathlib.Path(root) / "cifar10" / "test-00000-of-00001.parquet"),
                               split="train").with_format("torch")
    tick = time.perf_counter()
    for idx in torch.randperm(len(ds), generator=g).split(128):
        batch = torch.stack(list(ds[idx.tolist()]["img"]))
        if batch.shape[-1] == 3:  # channels-last images from older `datasets` versions
            batch = batch.permute(0, 3, 1, 2)
        normalize(crop_flip(batch, g), torch.zeros(3), torch.ones(3))
    decode_s = time.perf_counter() - tick
    return {"images": len(data), "tensor_epoch_s": tensor_s, "decode_epoch_s": decode_s, "speedup": decode_s / tensor_s}


def _seed_job(seed: int, threads: int, epochs: int) -> None:
    seed_everything(seed, threads)
    fit(BACKBONES["MobileNetV2-0.5"](), synthetic(1024, seed), synthetic(256, 99),
        TrainConfig(epochs=epochs, batch_size=128, channels_last=True), seed=seed, progress=False)


def parallel_seeds(epochs: int = 1) -> dict:
    """Two seeds: one after the other with 2 threads each, or at once in 2 processes with 1 thread each."""
    code = ("import sys; sys.path.insert(0, {root!r}); from bench.run import _seed_job; "
            "_seed_job(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))").format(root=str(ROOT))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def launch(seed, threads):
        return subprocess.Popen([sys.executable, "-c", code, str(seed), str(threads), str(epochs)],
                                env={**env, "OMP_NUM_THREADS": str(threads)})

    tick = time.perf_counter()
    for seed in (0, 1):
        assert launch(seed, 2).wait() == 0
    sequential = time.perf_counter() - tick
    tick = time.perf_counter()
    procs = [launch(seed, 1) for seed in (0, 1)]
    assert all(p.wait() == 0 for p in procs)
    parallel = time.perf_counter() - tick
    return {"sequential_2_threads_s": sequential, "parallel_2x1_s": parallel,
            "seeds_per_hour_sequential": 2 * 3600 / sequential, "seeds_per_hour_parallel": 2 * 3600 / parallel,
            "speedup": sequential / parallel}


def compile_ratio(threads: int) -> dict:
    torch.set_num_threads(threads)
    out = {}
    for name, build in BACKBONES.items():
        model = build().to(memory_format=torch.channels_last)
        eager = step_images_per_s(model, 128, channels_last=True)
        try:
            tick = time.perf_counter()
            compiled = torch.compile(model)
            step_images_per_s(model, 128, channels_last=True, steps=1, compiled=compiled)
            compile_s = time.perf_counter() - tick
            fast = step_images_per_s(model, 128, channels_last=True, compiled=compiled)
            out[name] = {"eager_images_per_s": eager, "compiled_images_per_s": fast, "speedup": fast / eager,
                         "compile_s": compile_s}
        except Exception as error:  # noqa: BLE001 - a failed compile is a result to report, not a crash
            out[name] = {"eager_images_per_s": eager, "error": f"{type(error).__name__}: {error}"[:300]}
    return out


def layout_and_batch(threads: int) -> dict:
    torch.set_num_threads(threads)
    out = {}
    for name, build in BACKBONES.items():
        rows = {}
        for batch in (64, 128, 256):
            for channels_last in (False, True):
                rows[f"batch {batch}, {'channels_last' if channels_last else 'contiguous'}"] = \
                    step_images_per_s(build(), batch, channels_last, steps=4)
        base = rows["batch 128, contiguous"]
        out[name] = {k: {"images_per_s": v, "ratio_to_batch128_contiguous": v / base} for k, v in rows.items()}
    return out


def markdown(results: dict) -> str:
    env = results["environment"]
    lines = ["## Training speed (`make bench`)", "",
             "Measured by `make bench` (`bench/run.py`) in one run; speeds are ratios of measurements taken back to "
             "back on the same machine. Raw numbers are in `bench/results.json`.", "",
             f"Machine: {env['cpu']}, {env['logical_cpus']} logical CPUs, torch {env['versions']['torch']}, "
             f"{results['threads']} threads; measured {results['created']}.", "",
             "| measurement | result |", "| --- | --- |"]
    lo = results["loop_overhead"]
    lines.append(f"| loop overhead: `lib.train.fit` / hand-written loop (MobileNetV2-0.5, batch 128) | "
                 f"**{lo['ratio_median']:.3f}** (median of {len(lo['fit_images_per_s'])}) |")
    hw = results["hardware_efficiency"]
    for name, b in hw["backbones"].items():
        lines.append(f"| hardware efficiency, {name}: training GFLOP/s (3 × forward) / sgemm peak ({hw['sgemm_peak_gflops']:.0f} "
                     f"GFLOP/s) | **{b['fraction_of_peak']:.3f}** ({b['achieved_gflops']:.1f} GFLOP/s, "
                     f"{b['images_per_s']:.0f} img/s) |")
    dp = results["data_path"]
    if "speedup" in dp:
        lines.append(f"| data path: epoch of {dp['images']} images, decode every step / decoded-once tensors | "
                     f"**{dp['speedup']:.1f}×** ({dp['decode_epoch_s']:.2f} s vs {dp['tensor_epoch_s']:.2f} s) |")
    ps = results["parallel_seeds"]
    lines.append(f"| parallel seeds: seeds/hour, 2 processes × 1 thread / 1 process × 2 threads | "
                 f"**{ps['speedup']:.2f}** |")
    for name, c in results["compile"].items():
        value = (f"**{c['speedup']:.2f}** (compile {c['compile_s']:.0f} s)" if "speedup" in c
                 else f"failed: {c['error']}")
        lines.append(f"| torch.compile / eager, {name} | {value} |")
    for name, rows in results["layout_and_batch"].items():
        best = max(rows, key=lambda k: rows[k]["images_per_s"])
        cl = rows["batch 128, channels_last"]["ratio_to_batch128_contiguous"]
        lines.append(f"| channels_last / contiguous at batch 128, {name} | **{cl:.2f}** (fastest: {best}) |")
    lp = results.get("layout_and_precision", {})
    if lp:
        lines += ["", "### Memory layout × precision per backbone", "",
                  "Training step (forward + backward + SGD) at one thread, ratio to NCHW fp32 of the same round "
                  "(median of rounds; bf16 = CPU autocast: weights, the loss and BatchNorm's running statistics stay fp32).", "",
                  "| backbone (batch) | NCHW fp32 | channels_last fp32 | NCHW bf16 | channels_last bf16 | fastest |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for name, row in lp.items():
            c = row["cells"]
            base = c["NCHW fp32"]["images_per_s"]
            cells = [f"1.00× ({sum(base) / len(base):.0f} img/s)"] + [
                f"{c[k]['ratio_median']:.2f}×" for k in ("channels_last fp32", "NCHW bf16", "channels_last bf16")]
            lines.append(f"| {name} ({row['batch']}) | " + " | ".join(cells) + f" | {row['fastest']} |")
    ep = results.get("epoch_profile", {})
    if ep:
        lines += ["", "### Where an epoch of `fit` goes", "",
                  "One thread, each backbone in its fastest cell, 5,120 synthetic 32×32 images per epoch: the "
                  "best epoch of two against forward + backward + SGD step alone on batches of the same size"
                  + (f" (measured {results['sections_created']['epoch_profile']})"
                     if "epoch_profile" in results.get("sections_created", {}) else "") + ".", "",
                  "| backbone | cell | epoch (s) | forward + backward + step (s) | share outside the step | "
                  "evaluation and set-up per run (s) |", "| --- | --- | --- | --- | --- | --- |"]
        for name, e in ep.items():
            lines.append(f"| {name.split(' (')[0]} | {e['layout']} {e['precision']} | {e['epoch_s']:.2f} | "
                         f"{e['forward_backward_step_s']:.2f} | {100 * e['fraction_outside_step']:.0f} % | "
                         f"{e['evaluation_and_setup_s']:.2f} |")
    compile_lines = []
    for name, c in results["compile"].items():
        if "speedup" in c:
            compile_lines.append(f"{name} {c['speedup']:.2f}× after {c['compile_s']:.0f} s of compilation")
    lines += ["", "### What the book does with these numbers", "",
              f"* **Parallel seeds.** Two single-threaded processes train {ps['speedup']:.2f}× as many seeds per hour as "
              "one two-threaded process (small convolutions, depthwise ones above all, use a second thread poorly). "
              "`lib.repro.Chapter.run` therefore trains several runs at once in forked processes by default when "
              "several seeds run on a CPU (`default_workers`); `-p threads N` restores one run at a time.",
              "* **Decode once.** Decoding JPEGs at every step would cost "
              + (f"{dp['speedup']:.1f}× the epoch time of indexing decoded tensors; " if "speedup" in dp else "")
              + "`lib.data` decodes once and caches uint8 tensors.",
              "* **torch.compile**: " + ("; ".join(compile_lines) or "it failed here")
              + " (compile times include whatever torch's on-disk compile cache already held). "
              + ("The chapters do not use it: where it pays, its compile time (paid again in every forked seed "
                 "worker) is a large part of a reduced run of a few minutes per arm."),
              "* **Layout and precision**: the fastest cell per backbone is "
              + "; ".join(f"{name.split(' (')[0]}: {row['fastest']}" for name, row in lp.items())
              + " (table above); bf16 autocast is slower than fp32 in the same layout for "
              + (", ".join(name.split(" (")[0] for name, row in lp.items()
                           if row["cells"]["channels_last bf16"]["ratio_median"]
                           < row["cells"]["channels_last fp32"]["ratio_median"]) or "none")
              + "." if lp else
              "* **channels_last** is the default of the chapters' MobileNetV2 runs, where it helps.",
              "* **Numerics.** One thread per process instead of two changes floating-point summation order, so "
              "per-seed numbers differ in the last digits from a two-thread run (and chaotic training amplifies "
              "that); seeds, data order and augmentation draws are unchanged. Each run records its thread count."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-compile", action="store_true")
    parser.add_argument("--only", nargs="+", metavar="SECTION",
                        help="measure these sections only and keep the others of bench/results.json")
    args = parser.parse_args(argv)
    tick = time.perf_counter()
    results = {"created": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "threads": args.threads,
               "environment": environment(), "platform": platform.platform()}
    if args.only:
        kept = json.loads((ROOT / "bench" / "results.json").read_text())
        results = {**kept, "sections_created": {**kept.get("sections_created", {}),
                                                **{s: results["created"] for s in args.only}}}
    sections = [("loop_overhead", lambda: loop_overhead(args.threads)),
                ("hardware_efficiency", lambda: hardware_efficiency(args.threads)),
                ("data_path", lambda: data_path(os.environ.get("REPRO_DATA"))),
                ("parallel_seeds", parallel_seeds),
                ("compile", (lambda: {"skipped": {}}) if args.skip_compile else (lambda: compile_ratio(args.threads))),
                ("layout_and_batch", lambda: layout_and_batch(args.threads)),
                ("layout_and_precision", layout_and_precision),
                ("epoch_profile", epoch_profile)]
    unknown = sorted(set(args.only or []) - {key for key, _ in sections})
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; accepted: {', '.join(k for k, _ in sections)}")
    for key, measure in sections:
        if args.only and key not in args.only:
            continue
        t = time.perf_counter()
        results[key] = measure()
        print(f"{key}: {time.perf_counter() - t:.0f} s", flush=True)
    results["wall_time_s"] = time.perf_counter() - tick
    publish(ROOT / "bench" / "results.json", results, ROOT / "book" / "performance.md", "bench", markdown(results),
            title="Performance")
    print(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

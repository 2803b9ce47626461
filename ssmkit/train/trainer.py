"""The training loop: data -> model -> AdamW (SSM group) -> epochs of steps -> eval -> checkpoints and metrics.

A run directory holds config.yaml (resolved), metrics.csv, checkpoints/ (see checkpoint.py: the last epoch with
everything needed to resume — weights, optimizer, scheduler, RNG states, history — and the best validation epoch), and
results.json (test metrics of the best checkpoint). Resuming replays the remaining epochs exactly: the order of each
epoch is a function of (seed, epoch) and the RNG states are restored.

Distributed (torchrun): each global batch of that order is split across the ranks, and each rank's summed loss is
scaled by world_size / global batch, so that DDP's gradient average is the single-process gradient (up to the order
of floating-point reduction; dropout masks are drawn per rank, so runs with dropout differ in their random draws).
Metrics are summed over ranks; rank 0 alone writes files.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
import warnings
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from .. import data
from . import distributed as dist
from ..layers.checks import check_rate
from ..models import SSSD, Sashimi, SequenceModel
from ..models.pretrained import CONFIG, config_json, fitted_to, load_folder, load_weights
from .checkpoint import checkpoint_folder, read_state, read_weights, save_checkpoint, write_text_atomic
from ..progress import progress
from .build import build_model
from .config import TrainConfig
from .logs import tensorboard, write_steps
from .model_graphs import ModelGraphs
from .optim import adamw
from .run_dir import new_run_dir, read_run_config, tidy, write_metrics, write_normalization
from .step_sums import StepSums, step_sums, sums_dtype
from .task import Task


class Schedule:
    """The lr factor of each step: warmup over `warmup` steps (((step + 1)/warmup)^power: linear, or quadratic as
    --warmup-power 2 of Mega's fairseq fork for its Path-X; (step/warmup)^power for ``linear``, as fairseq's
    linear_decay, whose first update runs at its warmup_init_lr, 1e-7 in Mega's recipes, here 0), then cosine or
    linear decay to 0 at `total`, constant, times `gamma` at each of the `milestones` epochs (multistep, torch's
    MultiStepLR stepped per epoch, as the official BIDMC config), or constant times `factor` whenever more than
    `patience` epochs in a row brought no better validation score (plateau, as torch's ReduceLROnPlateau with its
    defaults, which the official configs name: better means above best·(1 + 1e-4) for a score to maximize, below
    best·(1 − 1e-4) for one to minimize).

    s5_cosine is the official S5 schedule (lindermanlab/S5 s5/train.py, train_helpers.py), which sets each step's lr
    after the step before, from a step counter that the cosine does not restart: step 0 at the full rate, step k of
    the warmup W at k/W, then step k > W at ½(1 + cos(π·min(k − 1, E)/E)) with E = total − W, so the cosine starts
    at W/E of its way and reaches 0 (lr_min, 0 in every official run) at step E + 1: the last W − 1 steps run at 0.

    cosine_warmup is the official S4 repository's (state-spaces/s4 configs/scheduler/cosine_warmup.yaml:
    transformers' get_cosine_schedule_with_warmup, stepped per step): k/W at step k < W (0 at the first step), then
    max(0, ½(1 + cos(π·(k − W)/(T − W)))), T its num_training_steps (schedule_steps), which need not be the run's
    length (SaShiMi's U-Net config: 200,000 against SC09's 100 epochs of 1,948 steps); past T it rises again, as there.

    A callable object rather than a function: LambdaLR checkpoints its attributes, so a plateau resumes exactly.
    """

    THRESHOLD = 1e-4

    def __init__(self, kind: str, warmup: int, total: int, patience: int, factor: float, maximize: bool = True,
                 every: int = 1, milestones: tuple = (), gamma: float = 0.1, steps_per_epoch: int = 1,
                 power: int = 1):
        self.kind, self.warmup, self.total, self.patience, self.factor = kind, warmup, total, patience, factor
        self.power = power
        self.maximize, self.every, self.best = maximize, every, None
        self.milestones, self.gamma, self.steps_per_epoch = tuple(milestones), gamma, steps_per_epoch
        self.scale, self.bad_epochs = 1.0, 0

    def __call__(self, step: int) -> float:
        if self.kind == "cosine_warmup":
            if step < self.warmup:
                return step / self.warmup
            return max(0.0, 0.5 * (1 + math.cos(math.pi * (step - self.warmup) / max(1, self.total - self.warmup))))
        if self.kind == "s5_cosine":
            if step <= self.warmup:
                return step / self.warmup if step else 1.0
            span = max(1, self.total - self.warmup)
            return 0.5 * (1 + math.cos(math.pi * min(step - 1, span) / span))
        if step < self.warmup:
            done = step if self.kind == "linear" else step + 1  # fairseq's linear_decay counts the updates done
            return (done / self.warmup) ** self.power
        done = min(1.0, (step - self.warmup) / max(1, self.total - self.warmup))
        if self.kind == "cosine":
            return 0.5 * (1 + math.cos(math.pi * done))
        if self.kind == "linear":
            return 1.0 - done
        if self.kind == "multistep":
            return self.gamma ** sum(m <= step // self.steps_per_epoch for m in self.milestones)
        return self.scale

    def end_epoch(self, score: float, epoch: int = 0) -> None:
        """The validation score (the task's metric) after epoch (0-based); the plateau reads it every `every` epochs."""
        if self.kind != "plateau" or (epoch + 1) % self.every:
            return
        margin = 1 + self.THRESHOLD if self.maximize else 1 - self.THRESHOLD
        if self.best is None or (score > self.best * margin if self.maximize else score < self.best * margin):
            self.best, self.bad_epochs = score, 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.scale, self.bad_epochs = self.scale * self.factor, 0


def trimmed(x: torch.Tensor, lengths: list) -> torch.Tensor:
    """x cut to the longest real sequence of its batch (trim_padding, as the official DSS loaders pad each batch to
    its longest: per process, and per micro-batch with accumulate): lengths (B,) or, for pairs, (B, 2) name the length
    axis, 1 or 2. A batch without lengths as is."""
    if not lengths:
        return x
    return x.narrow(lengths[0].dim(), 0, int(lengths[0].max()))


def _outputs(model, x: torch.Tensor, lengths: torch.Tensor | None, rate: float = 1.0) -> torch.Tensor:
    """model(x), passing lengths and rate only when they say something (a Sashimi takes neither)."""
    kw = {} if rate == 1.0 else {"rate": rate}
    return model(x, **kw) if lengths is None else model(x, lengths, **kw)


@torch.no_grad()
def evaluate(model, dataset, batch_size: int, device, rank: int = 0, world: int = 1, rate: float = 1.0,
             num_workers: int = 0, desc: str = "evaluation", trim: bool = False, drop_last: bool = False) -> dict:
    """{"loss", metric} over ``dataset`` (metric: acc, rmse or bits, see Task); with several ranks each takes every
    world-th sample and the sums are reduced. rate: the model's SSM step multiplier (SequenceModel.forward); trim:
    each padded batch cut to its longest sequence (trimmed); drop_last: the samples of the whole batches only, in
    order (the last partial batch left out, as the official S4 repository's evaluation loaders; a split smaller than
    one batch is scored whole: _scored)."""
    dataset = _scored(dataset, batch_size, drop_last)
    if len(dataset) == 0:
        raise ValueError("evaluate: the dataset has no samples")
    model.eval()
    task = Task(dataset)
    shard = data.subset(dataset, range(rank, len(dataset), world)) if world > 1 else dataset
    totals = torch.zeros(3, dtype=sums_dtype(device), device=device)  # summed on the device, read once (StepSums)
    batches = _loader(shard, device, num_workers, batch_size=batch_size)
    for x, y, *lengths in progress(batches, desc, enabled=rank == 0):
        x, y = ((trimmed(x, lengths) if trim else x).to(device, non_blocking=True), y.to(device, non_blocking=True))
        lengths = lengths[0].to(device, non_blocking=True) if lengths else None
        loss, metric, count = task.sums(_outputs(model, x, lengths, rate), y)
        totals += step_sums(loss, metric, count)
    total_loss, total_metric, n = dist.all_reduce_sum(totals.tolist(), device)
    return {"loss": total_loss / n, task.metric: task.value(total_metric, n)}


def _check_takes_data(model, dataset, device, config: TrainConfig) -> None:
    """One training sample through the model before a run's folder is written (evaluation mode, no gradient, the
    random state kept as it was): a model that cannot take the data (a length past the l_max of a kernel that ends
    there, as DSS-softmax's and SGConv's, a width that does not fit) fails here in one line, and leaves no folder
    holding only its config."""
    was_training = model.training
    rng_devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=rng_devices), torch.no_grad():  # (a DataLoader's iterator draws a seed)
        x, _, *lengths = next(iter(_loader(data.subset(dataset, [0]), device, 0, batch_size=1)))
        x = trimmed(x, lengths) if config.trim_padding else x  # as the training steps will give it
        model.eval()
        try:
            _outputs(model, x.to(device), lengths[0].to(device) if lengths else None)
        except ValueError as e:
            raise ValueError(f"model={config.model} (layer={config.layer}, layer_options={config.layer_options}) "
                             f"does not take a sample of dataset={config.dataset!r}: {e}") from None
        finally:
            model.train(was_training)


def _scored(dataset, batch_size: int, drop_last: bool):
    """The samples an evaluation scores: all, or with drop_last those of the whole batches (all where there is none,
    which the official loaders would leave empty)."""
    whole = len(dataset) - len(dataset) % batch_size
    return data.subset(dataset, range(whole)) if drop_last and whole else dataset


def epoch_batches(n: int, batch_size: int, seed: int, epoch: int, drop_last: bool = False) -> list[torch.Tensor]:
    """The global batches of one epoch: a permutation that depends on (seed, epoch) only, cut into batch_size; with
    drop_last, a last partial batch is left out."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
    return list(order[:n - n % batch_size if drop_last else n].split(batch_size))


def _rng_state(device) -> dict:  # this rank's; the checkpoint keeps every rank's
    state = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict, device) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def _check_batching(n: int, batch_size: int, world: int, drop_last: bool) -> None:
    if drop_last and n < batch_size:
        raise ValueError(f"drop_last: the {n} training samples make no whole batch of batch_size={batch_size}")
    last = 0 if drop_last else n % batch_size
    if batch_size < world or 0 < last < world:
        raise ValueError(f"batch_size: every global batch must give each of the {world} processes a sample; "
                         f"batch_size={batch_size} leaves {last or batch_size} for the last one of {n} samples")


def _graph_options(config: TrainConfig, world: int, rank: int, device: torch.device) -> TrainConfig:
    """model_graph is for one process on a CUDA GPU. Under DDP (DistributedDataParallel's backward hooks run outside
    the graphs) the run goes op by op, with one warning; on another device, where the graphs would not run, it does
    silently. Either way batches kept at one length for the graphs are cut to their longest again where that gives
    the same outputs (TrainConfig.trims_op_by_op: longest_norms read the positions before the longest sequence, the
    trimmed batch's; under DDP a process's own, where DDP synchronizes BatchNorm), without the padding's work."""
    if not config.model_graph or (world == 1 and ModelGraphs.runs_on(device)):
        return config
    trim = config.trims_op_by_op
    if world > 1 and rank == 0:
        cut = " with each batch cut to its longest sequence (trim_padding=true)" if trim != config.trim_padding else ""
        warnings.warn(f"model_graph: one process only; under DistributedDataParallel ({world} processes) this run goes "
                      f"op by op{cut}", stacklevel=3)
    return dataclasses.replace(config, model_graph=False, trim_padding=trim)


def _prepare(config: TrainConfig, resume):
    """Config, rank/world/device, datasets, model (DDP-wrapped when distributed, then compiled with compile=true),
    optimizer, scheduler."""
    if resume is not None:
        config = read_run_config(Path(resume))
    config = config or TrainConfig()
    rank, world, device = dist.setup(config.device)
    config = _graph_options(config, world, rank, device)
    torch.manual_seed(config.seed + rank)
    splits = {s: data.take(data.build(config.dataset, config.data_dir, s, **config.dataset_options),
                           config.train_subset if s == "train" else config.eval_subset, config.seed)
              for s in ("train", "val", "test")}
    for split, dataset in splits.items():
        if len(dataset) == 0:
            raise ValueError(f"dataset {config.dataset!r}: the {split} split has no samples (dataset_options "
                             f"{config.dataset_options})")
    _check_batching(len(splits["train"]), config.batch_size, world, config.drops_train_tail)
    torch.manual_seed(config.seed)  # the same initial weights on every rank
    model = build_model(config, splits["train"])
    folder = Path(resume or ".") / "checkpoints"
    if resume is not None and (folder / "last").is_file():  # the weights read once: the model they fit (saved under
        weights = read_weights(folder, "last")  # older defaults, fitted_to) and loaded; _restore does the rest
        model = fitted_to(model, weights)
        load_weights(model, weights, folder)
    model = model.to(device)
    torch.manual_seed(config.seed + rank)
    optimizer = adamw(model, config.lr, config.weight_decay, config.adam_betas, config.weight_decay_all,
                      config.weight_decay_heads)
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            torch.nn.SyncBatchNorm.convert_sync_batchnorm(model) if config.norm == "batch" else model,
            device_ids=[device] if device.type == "cuda" else None)
    if config.compile:
        model = torch.compile(model)
    steps = (len(splits["train"]) // config.batch_size if config.drops_train_tail
             else math.ceil(len(splits["train"]) / config.batch_size))
    total = config.epochs * steps if config.schedule_steps is None else config.schedule_steps
    warmup = config.warmup_epochs * steps if config.warmup_steps is None else config.warmup_steps
    maximize = Task(splits["train"]).maximize if config.plateau_mode == "auto" else config.plateau_mode == "max"
    schedule = Schedule(config.schedule, warmup, total, config.plateau_patience, config.plateau_factor,
                        maximize=maximize, every=config.plateau_every, milestones=config.milestones,
                        gamma=config.gamma, steps_per_epoch=steps, power=config.warmup_power)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    return config, rank, world, device, splits, model, optimizer, scheduler, steps


AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def _loader(dataset, device, num_workers: int, **kw) -> DataLoader:
    """A DataLoader with the dataset's own batching (its ``collate``, e.g. masks shared by a batch) where it has one."""
    return DataLoader(dataset, num_workers=num_workers, pin_memory=device.type == "cuda",
                      collate_fn=getattr(dataset, "collate", None), **kw)


def _train_epoch(config, model, optimizer, scheduler, scaler, train_set, epoch, rank, world, device, graphs=None):
    """One epoch; returns ([summed loss, summed metric, targets] over all ranks (see Task), and per optimizer step
    (step, epoch, lr, loss per target of this rank)). fp16 scales the loss (scaler, a GradScaler) against
    underflowing gradients; bf16 needs no scaling. graphs: the model's ModelGraphs (model_graph), which the forward
    goes through."""
    task = Task(train_set)
    model.train()
    amp = torch.autocast(device.type, dtype=AUTOCAST[config.precision] or torch.float32,
                         enabled=AUTOCAST[config.precision] is not None)
    batches = epoch_batches(len(train_set), config.batch_size, config.seed, epoch, config.drops_train_tail)
    loader = _loader(train_set, device, config.num_workers, batch_sampler=[b[rank::world].tolist() for b in batches])
    bar = progress(zip(loader, batches), f"epoch {epoch + 1}/{config.epochs}", len(batches), enabled=rank == 0)
    totals, steps, reader = [0.0, 0.0, 0.0], [], StepSums()

    def record(read: list) -> None:  # steps whose sums reached the host (StepSums: without waiting for each step)
        for (step, epoch_number, lr), sums in read:
            totals[:] = [t + v for t, v in zip(totals, sums)]
            steps.append((step, epoch_number, lr, sums[0] / max(sums[2], 1)))
            bar.set_postfix(loss=f"{totals[0] / totals[2]:.3f}",
                            **{task.metric: task.format(task.value(totals[1], totals[2]))})

    for i, ((x, y, *lengths), batch) in enumerate(bar):
        optimizer.zero_grad(set_to_none=True)
        # per target position of the global batch, times DDP's 1/world (positions a task leaves unscored count too:
        # a constant factor for the tasks that have them, the same number per sample)
        scale = world / (len(batch) * y[0].numel())
        size = math.ceil(len(y) / config.accumulate)
        lengths = lengths[0].split(size) if lengths else [None] * len(y.split(size))
        # trim_padding: each micro-batch cut to its longest sequence on the CPU, as each collated batch there, then
        # moved to the device (non_blocking: from the loader's pinned memory, without waiting for the steps before)
        parts = [tuple(None if t is None else t.to(device, non_blocking=True) for t in (
            trimmed(xm, [lm]) if config.trim_padding and lm is not None else xm, ym, lm))
            for xm, ym, lm in zip(x.split(size), y.split(size), lengths)]
        sums = None
        for j, (xm, ym, lm) in enumerate(parts):
            last = j == len(parts) - 1
            with contextlib.nullcontext() if last or world == 1 else model.no_sync():  # all-reduce once per step
                with amp:
                    logits = _outputs(model, xm, lm) if graphs is None else graphs(xm, lm)
                loss, metric, count = task.sums(logits, ym)
                # CCNN's weight penalty, once per step and not in the reported loss (DDP averages it over ranks as is)
                penalty = config.weight_penalty * _unwrap(model).weight_penalty() if config.weight_penalty and last \
                    else 0.0
                scaler.scale(loss * scale + penalty).backward()
            part = step_sums(loss, metric, count)
            sums = part if sums is None else sums + part
        if config.grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        lr = scheduler.get_last_lr()[0]
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        record(reader.push((epoch * len(batches) + i + 1, epoch + 1, lr), sums))
    record(reader.finish())
    loss_sum, metric_sum, seen = totals
    return dist.all_reduce_sum([loss_sum, metric_sum, seen], device), steps


def _unwrap(model: torch.nn.Module) -> SequenceModel:
    """The SequenceModel inside torch.compile's and DDP's wrappers."""
    model = getattr(model, "_orig_mod", model)
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def _summary(history: list[dict], results: dict, n_params: int, task: Task) -> str:
    m = task.metric
    best = None
    for row in history:
        best = row if best is None or task.better(row[f"val_{m}"], best[f"val_{m}"]) else best
    rows = [("parameters", f"{n_params:,}"), ("epochs", str(len(history))),
            ("best validation", f"{task.format(best[f'val_{m}']).strip()} (epoch {best['epoch']})" if best else "-"),
            (f"test {task.label}", task.format(results[f"test_{m}"]).strip()),
            ("test loss", f"{results['test_loss']:.4f}"),
            ("training time", f"{sum(r['seconds'] for r in history):.1f} s"), ("run directory", results["run_dir"])]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def _restore(run_dir: Path, optimizer, scheduler, scaler, rank: int, world: int, device, log) -> tuple:
    """Load the last checkpoint of run_dir into optimizer, scheduler, loss scaler and the RNG (the model's weights
    were loaded as it was built, _prepare); returns (start_epoch, best_val, history). A run stopped before its first
    checkpoint starts over (its config.yaml is all it has)."""
    folder = run_dir / "checkpoints"
    if not (folder / "last").is_file():
        log(f"resuming {run_dir}: no epoch was finished, so it starts from the beginning")
        return 0, None, []
    ckpt = read_state(folder, "last")
    if len(ckpt["rng"]) != world:
        raise ValueError(f"resume: {run_dir} was written by {len(ckpt['rng'])} processes; resume it with as many "
                         f"(got {world})")
    saved = [len(g["params"]) for g in ckpt["optimizer"]["param_groups"]]
    built = [len(g["params"]) for g in optimizer.param_groups]
    if saved != built:  # a model this ssmkit builds with other parameters than the run's (e.g. S5's encoder bias)
        raise ValueError(f"resume: {run_dir} was saved by an ssmkit whose model had other parameters (optimizer "
                         f"groups of {saved} tensors, this one builds {built}); its weights still load "
                         f"(ssmkit.load, eval, generate), or train it afresh")
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    if "scaler" in ckpt:  # fp16 runs; checkpoints from before it was saved have none
        scaler.load_state_dict(ckpt["scaler"])
    _set_rng_state(ckpt["rng"][rank], device)
    if rank == 0:  # a crash between the checkpoint and the CSV left it behind the history
        write_metrics(ckpt["history"], run_dir / "metrics.csv")
    log(f"resuming {run_dir} after epoch {ckpt['epoch'] + 1}")
    return ckpt["epoch"] + 1, ckpt["best_val"], ckpt["history"]


def _out_of_time(config: TrainConfig, history: list[dict]) -> bool:
    """Whether the epochs so far (history's seconds) reach config.max_minutes; rank 0's clock decides for all."""
    return bool(config.max_minutes) and dist.broadcast(sum(r["seconds"] for r in history) >= 60 * config.max_minutes)


def train(config: TrainConfig | None = None, resume: str | Path | None = None, log=print) -> dict:
    """Train (or resume) a run; returns the test metrics of the best checkpoint."""
    config, rank, world, device, splits, model, optimizer, scheduler, steps = _prepare(config, resume)
    plain = _unwrap(model)
    graphs = ModelGraphs(plain) if config.model_graph else None
    scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")
    log = log if rank == 0 else (lambda *_: None)
    task = Task(splits["train"])
    m = task.metric
    if resume is not None:
        run_dir = Path(resume)
        start_epoch, best_val, history = _restore(run_dir, optimizer, scheduler, scaler, rank, world, device, log)
    else:
        _check_takes_data(plain, splits["train"], device, config)
        run_dir = Path(dist.broadcast(str(new_run_dir(config)) if rank == 0 else None))
        start_epoch, best_val, history = 0, None, []
        if rank == 0:
            write_normalization(run_dir, splits["train"])
    n_params = sum(p.numel() for p in plain.parameters())
    # per-position tasks may leave positions unscored; imputation scores the missing entries
    unit = {"lm": "scored tokens", "impute": "missing entries"}.get(task.kind, "samples")
    log(f"run {run_dir}: {config.model} of {config.blocks} x{config.n_layers}, d_model={config.d_model}, "
        f"{n_params:,} parameters, {config.dataset} ({len(splits['train'])} train), {device} x{world}")
    board = tensorboard(run_dir, rank, log)
    if _out_of_time(config, history):
        log(f"max_minutes={config.max_minutes:g}: the run's training time already reaches it; no more epochs")
        start_epoch = config.epochs  # a run resumed after it stopped there: its results as they were
    for epoch in range(start_epoch, config.epochs):
        started = time.perf_counter()
        (loss_sum, metric_sum, seen), step_rows = _train_epoch(config, model, optimizer, scheduler, scaler,
                                                               splits["train"], epoch, rank, world, device, graphs)
        val = evaluate(model, splits["val"], config.batch_size, device, rank, world, num_workers=config.num_workers,
                       desc="validation", trim=config.trims_op_by_op, drop_last=config.drops_eval_tail)
        seconds = time.perf_counter() - started
        row = {"epoch": epoch + 1, "step": (epoch + 1) * steps, "lr": scheduler.get_last_lr()[0],
               "train_loss": loss_sum / seen, f"train_{m}": task.value(metric_sum, seen), "val_loss": val["loss"],
               f"val_{m}": val[m], "seconds": seconds}
        history.append(row)
        improved = task.better(val[m], best_val)
        best_val = val[m] if improved else best_val
        scheduler.lr_lambdas[0].end_epoch(val[m], epoch)
        rng = dist.gather(_rng_state(device))
        if rank == 0:
            write_steps(run_dir / "steps.csv", step_rows, after=epoch * steps)
            state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "rng": rng,
                     "scaler": scaler.state_dict(), "epoch": epoch, "best_val": best_val, "history": history}
            save_checkpoint(run_dir / "checkpoints", epoch, plain.state_dict(), state, best=improved,
                            model_config=config_json(type(plain).__name__, plain.config))
            write_metrics(history, run_dir / "metrics.csv")
        if board is not None:
            for key in list(row)[2:-1]:
                board.add_scalar(key, row[key], row["step"])
            for step, _, _, loss in step_rows:
                board.add_scalar("train_loss_step", loss, step)
        log(f"epoch {epoch + 1:3d}/{config.epochs}  train loss {row['train_loss']:.3f} {m} "
            f"{task.format(row[f'train_{m}'])}  val loss {val['loss']:.3f} {m} {task.format(val[m])}  "
            f"{seen / seconds:,.0f} {unit}/s")
        dist.barrier()
        if epoch + 1 < config.epochs and _out_of_time(config, history):  # (after the last epoch: no news)
            spent = sum(r["seconds"] for r in history)
            log(f"stopping after epoch {epoch + 1}: {spent / 60:.1f} min of training reached max_minutes="
                f"{config.max_minutes:g}")
            break
    best = load_model(run_dir, "best", device=device)
    test = evaluate(best, splits["test"], config.batch_size, device, rank, world, num_workers=config.num_workers,
                    desc="test", trim=config.trims_op_by_op, drop_last=config.drops_eval_tail)
    results = {"test_loss": test["loss"], f"test_{m}": test[m], f"best_val_{m}": best_val, "run_dir": str(run_dir)}
    if rank == 0:
        write_text_atomic(json.dumps(results, indent=2) + "\n", run_dir / "results.json")
        tidy(run_dir)
    if board is not None:
        board.close()
    log(f"test {task.label} {task.format(test[m]).strip()} (loss {test['loss']:.3f}) with the best validation "
        f"checkpoint (val {task.format(best_val).strip()}); run directory {run_dir}")
    log(_summary(history, results, n_params, task))
    return results


def load_model(path: str | Path, checkpoint: str = "best", device="cpu") -> SequenceModel | Sashimi | SSSD:
    """The trained model, in eval mode: ``ssmkit.load(path)``. path: a run directory (its ``checkpoint``, best or
    last), a folder with config.json and model.safetensors (a run's checkpoint folder, or one written by
    save_pretrained), or a Hub id 'owner/name'. The dataset is not needed (runs written before config.json was saved
    beside the weights rebuild it, to learn the model's shape)."""
    path = Path(path)
    if checkpoint not in ("best", "last"):
        raise ValueError(f"checkpoint: expected 'best' or 'last', got {checkpoint!r}")
    if not (path / "config.yaml").is_file():
        return load_folder(path, device=device)
    folder = checkpoint_folder(path / "checkpoints", checkpoint)
    if (folder / CONFIG).is_file():
        return load_folder(folder, device=device)
    config = read_run_config(path)
    model = build_model(config, data.build(config.dataset, config.data_dir, "val", **config.dataset_options))
    weights = read_weights(path / "checkpoints", checkpoint)
    model = fitted_to(model, weights)
    load_weights(model, weights, folder)
    return model.to(device).eval()


def trained_length(model: torch.nn.Module):
    """The input length (or grid) a model was built for: the first l_max its layers hold (the trainer gives them the
    dataset's), None when none holds one."""
    return next((m.l_max for m in model.modules() if getattr(m, "l_max", None) is not None), None)


def evaluate_run(run_dir: str | Path, split: str = "test", checkpoint: str = "best", device: str = "auto",
                 rate: float = 1.0, dataset_options: dict | None = None, subset: int | None = None) -> dict:
    """Metrics of a run's checkpoint on a split, and "samples": how many it scored. dataset_options update the run's
    (e.g. sample_rate=8000 with rate=2 for the zero-shot resolution change; data_dir: where the data is now).
    subset: the seeded subset the run used (train_subset or eval_subset) when None, so that the numbers match
    results.json; 0 for the whole split."""
    check_rate(rate)  # before anything is loaded or warned about
    config = read_run_config(Path(run_dir))
    dev = dist.setup(device)[2]
    if subset is None:
        subset = config.train_subset if split == "train" else config.eval_subset
    if not isinstance(subset, int) or subset < 0:
        raise ValueError(f"subset: expected a count >= 0 (0: the whole split), got {subset!r}")
    model = load_model(run_dir, checkpoint, device=dev)
    options = {**config.dataset_options, **(dataset_options or {})}
    if "split" in options:
        raise ValueError("split: choose the split to score with --split, not as a dataset option")
    data_dir = options.pop("data_dir", config.data_dir)  # where the run's data is now, if it moved
    try:
        built = data.build(config.dataset, data_dir, split, **options)
    except FileNotFoundError as e:
        raise FileNotFoundError(f"{e} (if the run's data moved: --set data_dir=DIR)") from None
    if rate != 1.0 and getattr(built, "l_max", None) == trained_length(model):
        warnings.warn(f"rate={rate}: the {split} inputs have the training length {built.l_max}; a resolution change "
                      f"also sets the data's (e.g. --set size=... or sample_rate=...)")
    dataset = _scored(data.take(built, subset, config.seed), config.batch_size, config.drops_eval_tail)
    return {**evaluate(model, dataset, config.batch_size, dev, rate=rate, num_workers=config.num_workers, desc=split,
                       trim=config.trims_op_by_op), "samples": len(dataset)}

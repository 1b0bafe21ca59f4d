"""Conclusions about model optimisation: what sparsity costs, sparse against dense inference,
approximate against exact algorithms as sizes grow, and what transfer learning saves.

Each ``*_table`` takes a tidy trials frame (``Results.frame`` or ``ResultStore.trials_frame()``)
of one workload (``prune-infer``, ``approx-vs-exact``, ``transfer``) and gives one row per compared
point with 95% intervals over the repeats (:mod:`labkit.analysis.intervals`; with fewer than five runs a side
an interval is not available); each ``describe_*`` sentence claims a direction only when an
interval does. The accuracy a pruned model loses is the same in every repeat (one trained model,
pruned the same way): its interval, from :func:`loss_interval`, is over the held-out images, not
over repeats.

>>> e = loss_interval(0, 0, 899)
>>> e.value, round(e.lo, 4), round(e.hi, 4)
(0.0, -0.0022, 0.0022)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from labkit.analysis.claims import ratio_words, reached_words
from labkit.analysis.frames import point_params, require
from labkit.analysis.intervals import Estimate, direction, median_estimate, ratio_estimate, show
from labkit.analysis.trust import trusted
from labkit.common.errors import DataError, ParameterError
from labkit.common.format import format_number

if TYPE_CHECKING:
    import pandas as pd

MODEL_KEYS = ("scope", "hidden", "depth", "epochs", "seed")  # what fixes a pruned model's accuracy


def loss_interval(lost_right: int, gained_right: int, n: int, confidence: float = 0.95) -> Estimate:
    """The accuracy lost, ``(lost_right − gained_right) / n``, with the Agresti–Min interval for a
    difference of paired proportions (Wald's, with 0.5 added to each of the four cells: Agresti and
    Min, Statistics in Medicine 24, 2005), over the ``n`` held-out images both models classified.

    ``lost_right``: images the unpruned model got right and the pruned one wrong; ``gained_right``:
    the reverse. The interval has a width even when no prediction changed.
    """
    from scipy.stats import norm

    if n <= 0 or min(lost_right, gained_right) < 0 or lost_right + gained_right > n:
        raise ParameterError("lost_right, gained_right, n", (lost_right, gained_right, n), "counts of n >= 1 images")
    b, c, m = lost_right + 0.5, gained_right + 0.5, n + 2.0
    centre = (b - c) / m
    half = float(norm.ppf(0.5 + confidence / 2)) * math.sqrt((b + c) - (b - c) ** 2 / m) / m
    value = (lost_right - gained_right) / n
    return Estimate(value, min(centre - half, value), max(centre + half, value))


def _ok(frame: pd.DataFrame, workload: str, columns: tuple[str, ...]) -> pd.DataFrame:
    require(frame, ("point", "status", "throughput", "workers", *columns))
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        raise DataError("no trial with status ok", f"needs successful {workload} trials")
    params = point_params(ok)
    if set(params["workload"]) != {workload}:
        raise DataError(f"trials of {sorted(set(params['workload']))}", f"needs trials of {workload!r} only")
    return ok.assign(**params.drop(columns=["workers", "workload"]).add_prefix("p_"))


def _cols(name: str, e: Estimate) -> dict[str, float]:
    """``{name: value, name_lo: lo, name_hi: hi}``."""
    return {name: e.value, f"{name}_lo": e.lo, f"{name}_hi": e.hi}


def _positive(estimate: Any, *samples: Any) -> Estimate:
    """``estimate(*samples)``, or NaN where a sample is not > 0 (an accuracy of 0: no ratio)."""
    if any(np.any(np.asarray(x, float) <= 0) for x in samples):
        return Estimate(math.nan, math.nan, math.nan, "a value of 0: no interval")
    return estimate(*samples)


# -- pruning ---------------------------------------------------------------------------------


def pruning_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per ``prune-infer`` point: sparsity asked and measured, parameters left, held-out
    accuracy pruned and unpruned, the accuracy lost with its interval (``loss_lo``, ``loss_hi``:
    :func:`loss_interval`), and the median inference throughput with its interval over the runs."""
    import pandas as pd

    need = ("accuracy", "accuracy_dense", "lost_right", "gained_right", "heldout_samples", "sparsity_measured")
    ok = _ok(frame, "prune-infer", need)
    rows = []
    for _, g in ok.groupby("point", sort=False):
        r = g.iloc[0]
        loss = loss_interval(int(r.lost_right), int(r.gained_right), int(r.heldout_samples))
        tp = median_estimate(g["throughput"].to_numpy(float))
        rows.append(
            {
                **{k: r[f"p_{k}"] for k in ("sparsity", "format", *MODEL_KEYS)},
                "workers": int(r.workers),
                "runs": len(g),
                **{k: float(r[k]) for k in ("sparsity_measured", "accuracy", "accuracy_dense")},
                **{k: int(r[k]) for k in ("nonzero_params", "params_total")},
                **_cols("loss", loss),
                "heldout": int(r.heldout_samples),
                **_cols("throughput", tp),
                "unit": r.unit,
            }
        )
    return pd.DataFrame(rows).sort_values(["sparsity", "format", "workers"], ignore_index=True)


def _points(v: float) -> str:
    return f"{format_number(v * 100)} point{'' if abs(v * 100) == 1 else 's'}"


@trusted
def describe_pruning(frame: pd.DataFrame, max_loss: float = 0.01) -> str:
    """The largest sparsity whose accuracy loss stays under ``max_loss`` (a fraction: 0.01 is one
    point) by its interval's upper end, per trained model; says when none does, and where the
    interval holds the threshold (the runs cannot tell)."""
    if isinstance(max_loss, bool) or not isinstance(max_loss, (int, float)) or not 0 < max_loss < 1:
        raise ParameterError("max_loss", max_loss, "an accuracy loss as a fraction, e.g. 0.01 for one point")
    table = pruning_table(frame)
    limit = _points(max_loss)
    out = []
    for key, g in table.groupby(list(MODEL_KEYS), sort=True):
        g = g.drop_duplicates("sparsity").sort_values("sparsity")
        first = g.iloc[0]
        out.append(
            f"Model {', '.join(f'{k}={v}' for k, v in zip(MODEL_KEYS, key))}: unpruned held-out accuracy "
            f"{first.accuracy_dense:.1%}; accuracy lost per sparsity, with its 95% interval over the "
            f"{first.heldout} held-out images (Agresti–Min; one trained model):"
        )
        verdicts = {}
        for r in g.itertuples():
            verdicts[r.sparsity] = "under" if r.loss_hi < max_loss else "over" if r.loss_lo > max_loss else "unclear"
            out.append(
                f"sparsity {r.sparsity:g} ({r.sparsity_measured:.1%} of weights zero, {r.nonzero_params:,} of "
                f"{r.params_total:,} parameters nonzero): accuracy {r.accuracy:.1%}, lost "
                f"{show(r.loss, r.loss_lo, r.loss_hi, 100)} points."
            )
        out.append(_pruning_answer(g, verdicts, limit))
    return "\n".join(out)


def _pruning_answer(g: pd.DataFrame, verdicts: dict[float, str], limit: str) -> str:
    under = [s for s, v in verdicts.items() if v == "under"]
    unclear = [f"{s:g}" for s, v in verdicts.items() if v == "unclear"]
    if not under:
        if unclear:
            return (
                f"Answer: no sparsity measured was shown to cost under {limit}; at sparsity {', '.join(unclear)} "
                f"it cannot be told (the interval holds {limit})."
            )
        return f"Answer: every sparsity measured lost more than {limit}, by its interval."
    best = g[g["sparsity"] == max(under)].iloc[0]
    text = (
        f"Answer: sparsity {best.sparsity:g} is the largest measured whose accuracy loss stays under {limit} by its "
        f"interval ({_points(best.loss_lo)} to {_points(best.loss_hi)}), with {best.nonzero_params:,} of "
        f"{best.params_total:,} parameters left."
    )
    above = [s for s in unclear if float(s) > best.sparsity]
    if above:
        text += f" At sparsity {', '.join(above)} the runs cannot tell (the interval holds {limit})."
    below = [f"{s:g}" for s, v in verdicts.items() if s < best.sparsity and v != "under"]
    if below:
        text += f" At the smaller sparsity {', '.join(below)} the loss was not shown under {limit}."
    return text


def sparse_speed_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per sparsity and worker count measured in both formats: the sparse (CSR) throughput over the
    dense one, a ratio of medians with its 95% interval (NaN, and ``note``, where not available)."""
    import pandas as pd

    ok = _ok(frame, "prune-infer", ())
    rest = [c for c in ok.columns if c.startswith("p_") and c != "p_format"]
    rows = []
    for key, g in ok.groupby([*rest, "workers"], sort=True):
        by = {f: gf["throughput"].to_numpy(float) for f, gf in g.groupby("p_format")}
        if set(by) != {"dense", "sparse"}:
            continue
        r = ratio_estimate(by["sparse"], by["dense"])
        rows.append(
            {
                "sparsity": float(g["p_sparsity"].iloc[0]),
                "workers": int(key[-1]),
                "runs_dense": by["dense"].size,
                "runs_sparse": by["sparse"].size,
                "dense": float(np.median(by["dense"])),
                "sparse": float(np.median(by["sparse"])),
                "unit": g["unit"].iloc[0],
                **_cols("ratio", r),
                "note": r.note,
            }
        )
    columns = ["sparsity", "workers", "runs_dense", "runs_sparse", "dense", "sparse", "unit", "ratio", "ratio_lo"]
    return pd.DataFrame(rows, columns=[*columns, "ratio_hi", "note"])


@trusted
def describe_sparse_speed(frame: pd.DataFrame) -> str:
    """Whether sparse (CSR) inference ran faster or slower than dense, per sparsity, by its interval."""
    table = sparse_speed_table(frame)
    if table.empty:
        return "Sparse and dense inference were not both measured at any sparsity: no comparison."
    lines, faster, slower = [], [], []
    for r in table.itertuples():
        d = direction(r.ratio_lo, r.ratio_hi)
        said = ratio_words(Estimate(r.ratio, r.ratio_lo, r.ratio_hi, r.note), "the dense throughput")
        lines.append(f"sparsity {r.sparsity:g} on {r.workers} worker(s): sparse ran at {said}.")
        faster += [f"{r.sparsity:g}"] if d == "up" else []
        slower += [f"{r.sparsity:g}"] if d == "down" else []
    answer = f"at sparsity {', '.join(faster)}" if faster else "at no sparsity measured"
    tail = f"; shown slower at {', '.join(slower)}" if slower else ""
    return "\n".join([*lines, f"Answer: sparse inference was shown faster {answer}{tail}."])


# -- exact against approximate -----------------------------------------------------------------


def approx_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per task (``svd``, ``knn``), size, worker count and other parameters: the median time of the
    exact and the approximate algorithm, the approximate one's throughput over the exact one's (its
    speed-up, with its interval), the time saved (a difference of medians: an estimate), the error of
    each and the rank the exact SVD found."""
    import pandas as pd

    ok = _ok(frame, "approx-vs-exact", ("wall_s", "task_error"))
    ok = ok.assign(task=ok["p_algorithm"].str.split("-").str[0], exact=ok["p_algorithm"].str.endswith("-exact"))
    rest = [c for c in ok.columns if c.startswith("p_") and c not in ("p_algorithm", "p_size")]
    rows = []
    for (task, size, workers, *_), g in ok.groupby(["task", "p_size", "workers", *rest], sort=True, dropna=False):
        ex, ap = g[g["exact"]], g[~g["exact"]]
        if ex.empty or ap.empty:
            continue
        r = ratio_estimate(ap["throughput"].to_numpy(float), ex["throughput"].to_numpy(float))
        t_ex, t_ap = float(ex["wall_s"].median()), float(ap["wall_s"].median())
        err_ap = float(ap["task_error"].median())
        err_ex = float(ex["task_error"].median())
        rows.append(
            {
                "task": task,
                "size": int(size),
                "workers": int(workers),
                "runs_exact": len(ex),
                "runs_approx": len(ap),
                "time_exact_s": t_ex,
                "time_approx_s": t_ap,
                "time_saved_s": t_ex - t_ap,
                **_cols("speedup", r),
                "note": r.note,
                "error_exact": err_ex,
                "error_approx": err_ap,
                "error_added": err_ap - err_ex,
                "rank_found": float(ex["rank_found"].median()) if "rank_found" in ex else math.nan,
            }
        )
    return pd.DataFrame(rows)


_NAMES = {
    "svd": ("exact SVD", "randomized SVD", "relative reconstruction error"),
    "knn": ("exact k-NN", "random-projection k-NN", "1 − recall@k"),
}


@trusted
def describe_approx(frame: pd.DataFrame) -> str:
    """Time saved and error added by the approximate algorithm against the exact one at each size,
    and whether the speed-up grows or shrinks with size (only where the intervals say so)."""
    table = approx_table(frame)
    if table.empty:
        return "No size was measured with both an exact and an approximate algorithm: no comparison."
    lines = []
    for (task, workers), g in table.groupby(["task", "workers"], sort=True):
        exact, approx, what = _NAMES[task]
        lines.append(f"{approx} against {exact} on {workers} worker(s) (error: {what}):")
        for r in g.sort_values("size").itertuples():
            e = Estimate(r.speedup, r.speedup_lo, r.speedup_hi, r.note)
            saved = f"{format_number(abs(r.time_saved_s))} s {'saved' if r.time_saved_s >= 0 else 'more'}"
            lines.append(
                f"{r.size:,} rows: {format_number(r.time_approx_s)} s against {format_number(r.time_exact_s)} s "
                f"(medians; {saved}, an estimate), {ratio_words(e, 'the exact throughput')}; error "
                f"{r.error_approx:.3g} against {r.error_exact:.3g} (added {r.error_added:.3g})"
                + ("." if math.isnan(r.rank_found) else f"; the exact SVD found rank {r.rank_found:g}.")
            )
        small, large = g.loc[g["size"].idxmin()], g.loc[g["size"].idxmax()]
        lines.append(_trend(task, small, large))
    return "\n".join(lines)


def _trend(task: str, small: Any, large: Any) -> str:
    if small["size"] == large["size"]:
        return f"Answer ({task}): one size measured: no trend with size."
    head = f"Answer ({task}): from {int(small['size']):,} to {int(large['size']):,} rows the speed-up "
    moved = f"went from {format_number(small['speedup'])}× to {format_number(large['speedup'])}×"
    lo_s, hi_s, lo_l, hi_l = small["speedup_lo"], small["speedup_hi"], large["speedup_lo"], large["speedup_hi"]
    if any(math.isnan(v) for v in (lo_s, hi_s, lo_l, hi_l)):
        return head + f"{moved} (intervals not available: no trend claimed)."
    if lo_l > hi_s or hi_l < lo_s:
        return head + f"{'grew' if lo_l > hi_s else 'shrank'}: {moved}, the intervals apart."
    return head + f"{moved}; the intervals overlap: the runs cannot tell whether it changes with size."


# -- transfer ----------------------------------------------------------------------------------


def transfer_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per ``transfer`` mode (and worker count): runs, runs that reached the target, the
    median time to target among them, the median final held-out accuracy, each with its interval,
    epochs, trainable parameters and the FLOPs per run (an estimate)."""
    import pandas as pd

    need = ("time_to_target_s", "reached_target", "final_accuracy", "trainable_params", "flops_estimate", "epochs")
    ok = _ok(frame, "transfer", need)
    rows = []
    for (mode, workers), g in ok.groupby(["p_mode", "workers"], sort=True):
        reached = g["reached_target"].astype(bool).to_numpy()
        ttt = pd.to_numeric(g.loc[reached, "time_to_target_s"]).to_numpy(float)
        t = median_estimate(ttt) if ttt.size else Estimate(math.nan, math.nan, math.nan, "not reached")
        acc = _positive(median_estimate, g["final_accuracy"].to_numpy(float))
        rows.append(
            {
                "mode": mode,
                "workers": int(workers),
                "runs": len(g),
                "reached": int(reached.sum()),
                "target_accuracy": float(g["target_accuracy"].iloc[0]),
                **_cols("ttt", t),
                "ttt_runs": ttt.tolist(),
                **_cols("accuracy", acc),
                "accuracy_runs": g["final_accuracy"].astype(float).tolist(),
                "epochs": float(pd.to_numeric(g["epochs"]).median()),
                "trainable_params": int(g["trainable_params"].iloc[0]),
                "flops_estimate": float(g["flops_estimate"].median()),
                "flops_runs": g["flops_estimate"].astype(float).tolist(),
            }
        )
    return pd.DataFrame(rows)


@trusted
def describe_transfer(frame: pd.DataFrame, baseline: str = "scratch") -> str:
    """Each mode's time to target, accuracy reached and compute, then each mode against ``baseline``:
    the time to target and the FLOPs (an estimate) as ratios, and the accuracy reached, each with a
    direction only where its interval gives one."""
    table = transfer_table(frame)
    lines = []
    for r in table.itertuples():
        ttt = show(r.ttt, r.ttt_lo, r.ttt_hi, suffix=" s") if r.reached else "not measured"
        lines.append(
            f"{r.mode} on {r.workers} worker(s), {r.trainable_params:,} trainable parameters: "
            f"{reached_words(r.reached, r.runs)} (held-out accuracy {r.target_accuracy:g}); time to target {ttt}; "
            f"final accuracy {show(r.accuracy, r.accuracy_lo, r.accuracy_hi, 100, '%')}; "
            f"{format_number(r.epochs)} epochs, {r.flops_estimate:.3g} FLOPs per run (an estimate)."
        )
    for workers, g in table.groupby("workers", sort=True):
        by = {r.mode: r for r in g.itertuples()}
        if baseline not in by:
            lines.append(f"Answer: {baseline} was not measured on {workers} worker(s): no comparison.")
            continue
        base = by[baseline]
        for mode, r in by.items():
            if mode != baseline:
                lines.append(f"Answer: {mode} against {baseline} on {workers} worker(s): {_versus(r, base)}")
    return "\n".join(lines)


def _versus(r: Any, base: Any) -> str:
    if r.reached == r.runs and base.reached == base.runs:
        t = ratio_estimate(r.ttt_runs, base.ttt_runs)
        time_ = ratio_words(t, "the time to target", ("more", "less"))
    else:
        time_ = (
            f"time to target not compared ({r.mode} {reached_words(r.reached, r.runs)}, "
            f"{base.mode} {reached_words(base.reached, base.runs)})"
        )
    f = ratio_estimate(r.flops_runs, base.flops_runs)
    a = _positive(ratio_estimate, r.accuracy_runs, base.accuracy_runs)
    return (
        f"{time_}; {ratio_words(f, 'the estimated FLOPs', ('more', 'less'))}; final accuracy {r.accuracy:.1%} "
        f"against {base.accuracy:.1%}: {ratio_words(a, 'the accuracy', ('higher', 'lower'))}."
    )

"""Optuna's views of a sweep's study, as PNGs in the sweep directory.

``optuna_history.png`` (objective per trial and best so far), ``optuna_slice.png`` (objective
against each parameter) come from ``optuna.visualization.matplotlib``. ``optuna_importances.png``
is drawn here from ``optuna.importance.get_param_importances`` with Optuna's PED-ANOVA evaluator
(its default, fANOVA, fits a scikit-learn random forest: a large dependency for one plot), with
the values on the bars and the number of completed trials they rest on in the title: with few
trials they are noise.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import optuna

log = logging.getLogger("a3c_exp")

HISTORY, IMPORTANCES, SLICE = "optuna_history.png", "optuna_importances.png", "optuna_slice.png"


def param_importances(study: optuna.Study) -> dict[str, float]:
    """Each parameter's share of the objective's variance over completed trials (sums to 1)."""
    import optuna
    from optuna.importance import PedAnovaImportanceEvaluator

    with warnings.catch_warnings():  # PED-ANOVA is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        evaluator = PedAnovaImportanceEvaluator()
        return dict(optuna.importance.get_param_importances(study, evaluator=evaluator))


def _history_axes(study: optuna.Study, objective: str) -> Any:
    """Optuna's optimization history, with whole trial numbers on its axis (not 0.25, 0.5)."""
    import matplotlib.ticker
    from optuna.visualization import matplotlib as views

    axis = views.plot_optimization_history(study, target_name=objective)
    axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axis.set_xlabel("trial")
    return axis


def _importance_axes(study: optuna.Study, objective: str) -> Any:
    import matplotlib.pyplot as plt
    import optuna

    importances = param_importances(study)
    names = list(importances)[::-1]  # most important on top
    _, axis = plt.subplots(figsize=(6, 0.5 * len(names) + 1.5), layout="constrained")
    bars = axis.barh(names, [importances[name] for name in names], color="tab:blue")
    axis.bar_label(bars, fmt="%.2f", padding=3)
    axis.set_xlim(0, 1.1)
    axis.set_xlabel(f"importance for {objective} (PED-ANOVA)")
    done = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)))
    axis.set_title(f"Parameter importances ({done} completed trials)")  # few trials: noise
    return axis


def _save(axes: Any, path: Path, size: tuple[float, float] | None = None) -> Path:
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    import numpy as np

    fig = np.ravel(axes)[0].figure
    for axis in np.ravel(axes):  # log axes label minor ticks too, and they run into each other
        if axis.get_xscale() == "log":  # so label 1 and 3 of each decade, nothing else
            axis.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 3.0)))
            axis.xaxis.set_major_formatter(
                matplotlib.ticker.LogFormatterSciNotation(labelOnlyBase=False)
            )
            axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if size:
        fig.set_size_inches(*size)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_study(study: optuna.Study, out_dir: Path, objective: str = "objective") -> list[Path]:
    """Write history, importances and slice PNGs of ``study`` into ``out_dir``; return them.

    A view that cannot be drawn yet (importances need two completed trials) is skipped with a
    warning rather than failing the sweep summary.
    """
    import matplotlib

    matplotlib.use("Agg")
    import optuna
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as views

    out_dir = Path(out_dir)
    completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not completed:
        log.warning("study %s: no completed trial, no Optuna plots", study.study_name)
        return []
    n_params = len(completed[0].params)
    makers = {
        HISTORY: (lambda: _history_axes(study, objective), None),
        IMPORTANCES: (lambda: _importance_axes(study, objective), None),
        SLICE: (
            lambda: views.plot_slice(study, target_name=objective),
            (3.0 * n_params + 1.5, 3.8),
        ),
    }
    written = []
    # the slice view's categorical axes make matplotlib log a note per plot at INFO level
    logging.getLogger("matplotlib.category").setLevel(logging.WARNING)
    # optuna's views switch the global style to ggplot: keep that inside this block
    with matplotlib.rc_context(), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for name, (make, size) in makers.items():
            try:
                written.append(_save(make(), out_dir / name, size))
            except (ValueError, RuntimeError) as err:
                log.warning("%s not drawn: %s", name, err)
    return written

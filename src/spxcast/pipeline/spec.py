"""Pipeline DAGs declared as data.

This module imports nothing heavy: the Airflow DAG file and ``spxcast pipeline`` read it without loading
polars or any model library. A task names its callable as ``"module:function"``; the function takes a
:class:`spxcast.pipeline.context.TaskContext` and returns a small JSON-able mapping (table versions, metrics)
that the runner records. Data crosses task boundaries only through lake tables and run artifacts.

One task graph holds every task; a DAG is a named selection of it. Dependencies on tasks outside a DAG
are taken as satisfied by what is already in the lake (the ``training`` DAG starts from bronze).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from spxcast.errors import PipelineError


@dataclass(frozen=True)
class Task:
    """One unit of work: ``callable`` is ``"package.module:function"``.

    ``reusable``: the runner may reuse the task's last result when none of the lake tables it read or wrote
    changed since (see :mod:`spxcast.pipeline.reuse`); false for tasks reading external sources.
    ``artifacts``: paths under the run directory the task writes (copied when its result is reused).
    """

    name: str
    callable: str
    deps: tuple[str, ...] = ()
    retries: int | None = None
    description: str = ""
    reusable: bool = True
    artifacts: tuple[str, ...] = ()


@dataclass(frozen=True)
class DAG:
    """A named, validated set of tasks in dependency order.

    ``local_only``: the DAG exists for the local runner and gets no Airflow DAG file (``full`` chains
    ``ingest`` and ``training``, which Airflow schedules separately).
    """

    name: str
    tasks: tuple[Task, ...]
    description: str = ""
    local_only: bool = False
    _index: dict[str, Task] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Task] = {}
        for task in self.tasks:
            if task.name in index:
                raise PipelineError(f"DAG {self.name}: task {task.name!r} is declared twice")
            if task.callable.count(":") != 1 or not all(task.callable.split(":")):
                raise PipelineError(
                    f"DAG {self.name}: task {task.name!r} has callable {task.callable!r}; "
                    "expected 'module:function'"
                )
            index[task.name] = task
        object.__setattr__(self, "_index", index)
        self.order()

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def task(self, name: str) -> Task:
        try:
            return self._index[name]
        except KeyError as exc:
            raise PipelineError(
                f"DAG {self.name} has no task {name!r}; it has {sorted(self._index)}"
            ) from exc

    def internal_deps(self, name: str) -> tuple[str, ...]:
        """Dependencies of ``name`` that are part of this DAG."""
        return tuple(d for d in self.task(name).deps if d in self._index)

    def order(self) -> list[str]:
        """Task names in a topological order; raises on a cycle."""
        remaining = {t.name: set(self.internal_deps(t.name)) for t in self.tasks}
        ordered: list[str] = []
        while remaining:
            ready = sorted(name for name, deps in remaining.items() if not deps)
            if not ready:
                raise PipelineError(f"DAG {self.name} has a dependency cycle among {sorted(remaining)}")
            for name in ready:
                ordered.append(name)
                del remaining[name]
            for deps in remaining.values():
                deps.difference_update(ready)
        return ordered

    def downstream(self, name: str) -> set[str]:
        """Every task that depends on ``name``, directly or not."""
        found: set[str] = set()
        frontier = {name}
        while frontier:
            frontier = {t.name for t in self.tasks if set(self.internal_deps(t.name)) & frontier} - found
            found |= frontier
        return found


def _graph_tasks() -> tuple[Task, ...]:
    market = "spxcast.pipeline.tasks.market"
    news = "spxcast.pipeline.tasks.news"
    features = "spxcast.pipeline.tasks.features"
    training = "spxcast.pipeline.tasks.training"
    registry = "spxcast.pipeline.tasks.registry"
    featurestore = "spxcast.pipeline.tasks.featurestore"
    monitoring = "spxcast.pipeline.tasks.monitoring"
    live = "spxcast.pipeline.tasks.live"
    silver_market = ("silver_returns", "silver_technical", "silver_volatility", "silver_microstructure")
    return (
        Task(
            "ingest_market",
            f"{market}:ingest_market",
            description="Market source -> bronze.candles",
            reusable=False,
        ),
        Task(
            "ingest_news",
            f"{news}:ingest_news",
            deps=("ingest_market",),
            reusable=False,
            description="News source -> bronze.news (synthetic news follows the synthetic market's events)",
        ),
        Task(
            "validate_market",
            f"{market}:validate_market",
            deps=("ingest_market",),
            description="Gate: bronze.candles usable (rows, gaps, quarantine rate)",
        ),
        Task(
            "validate_news",
            f"{news}:validate_news",
            deps=("ingest_news",),
            description="Gate: bronze.news usable",
        ),
        *(
            Task(
                name,
                f"{features}:{name}",
                deps=("validate_market",),
                description=f"bronze.candles -> silver.{name[7:]}",
            )
            for name in silver_market
        ),
        Task(
            "silver_news_sentiment",
            f"{news}:silver_news_sentiment",
            deps=("validate_news",),
            description="bronze.news -> silver.news_scores (cached per text and scorer)",
        ),
        Task(
            "gold_market_features",
            f"{features}:gold_market_features",
            deps=silver_market,
            description="silver market groups -> gold.market_features",
        ),
        Task(
            "gold_news_signals",
            f"{news}:gold_news_signals",
            deps=("silver_news_sentiment", "validate_market"),
            description="news scores as of each bar close -> gold.news_signals",
        ),
        Task(
            "gold_labels",
            f"{features}:gold_labels",
            deps=("gold_market_features", "gold_news_signals"),
            description="gold.market_features + gold.news_signals + labels -> gold.features",
        ),
        Task(
            "materialize",
            f"{featurestore}:materialize",
            deps=("gold_labels",),
            description="gold.features -> Feast offline source (Parquet) and online store (newest rows)",
        ),
        *(
            Task(
                f"train_{model}",
                f"{training}:train_{model}",
                deps=("gold_labels",),
                artifacts=(f"candidates/{model}",),
                description=f"Tune and fit {model} on gold.features; evaluate against baselines",
            )
            for model in ("lightgbm", "xgboost", "ar")
        ),
        Task(
            "select_model",
            f"{training}:select_model",
            deps=("train_lightgbm", "train_xgboost", "train_ar"),
            description="Lowest validation RMSE among candidates that beat the zero forecast",
        ),
        Task(
            "register_model",
            f"{registry}:register_model",
            deps=("select_model",),
            description="Register the selected candidate in MLflow as challenger",
        ),
        Task(
            "monitor",
            f"{monitoring}:monitor",
            reusable=False,
            description="Drift, realised performance, freshness, alerts (prediction log, lake, registry)",
        ),
        Task(
            "supervise_live",
            f"{live}:supervise_live",
            retries=0,  # a check: the next scheduled run judges again, a retry would only repeat it
            reusable=False,
            description="Live loop alive and keeping up (position vs bronze and the trading calendar); "
            "a live_lag alert and a failure when it lags while the market is open",
        ),
    )


def _select(name: str, names: Iterable[str], description: str, *, local_only: bool = False) -> DAG:
    wanted = set(names)
    return DAG(name, tuple(t for t in _graph_tasks() if t.name in wanted), description, local_only)


_ALL = tuple(t.name for t in _graph_tasks())
_INGEST = ("ingest_market", "ingest_news")
_MONITORING = ("monitor",)
_ONLINE = ("materialize", "supervise_live")
# Checks of what runs (the champion, the live loop): scheduled on their own, never part of a training run.
_CHECKS = (*_MONITORING, "supervise_live")
_FEATURES = (
    "silver_returns",
    "silver_technical",
    "silver_volatility",
    "silver_microstructure",
    "silver_news_sentiment",
    "gold_market_features",
    "gold_news_signals",
    "gold_labels",
)
NEWS_FEATURE_TASKS = ("silver_news_sentiment", "gold_news_signals")

DAGS: dict[str, DAG] = {
    dag.name: dag
    for dag in (
        _select("ingest", _INGEST, "Ingest market data and news into bronze"),
        _select(
            "features",
            _FEATURES,
            "bronze -> silver -> gold.features (spxcast features build, in-process)",
            local_only=True,
        ),
        _select(
            "training",
            [n for n in _ALL if n not in _INGEST + _CHECKS],
            "Validate -> features -> train -> register",
        ),
        _select(
            "full",
            [n for n in _ALL if n not in _CHECKS],
            "Ingest, then the whole training DAG",
            local_only=True,
        ),
        _select("monitoring", _MONITORING, "Hourly: drift, decay, freshness and alerts of the champion"),
        _select(
            "online",
            _ONLINE,
            "Feature-store materialisation of gold and supervision of the live loop",
        ),
    )
}


def get_dag(name: str) -> DAG:
    try:
        return DAGS[name]
    except KeyError as exc:
        raise PipelineError(f"unknown DAG {name!r}; known DAGs: {', '.join(sorted(DAGS))}") from exc


def find_task(name: str) -> Task:
    """A task by name from the whole task graph."""
    for task in _graph_tasks():
        if task.name == name:
            return task
    return get_dag("full").task(name)  # raises the "no task" error naming the known tasks

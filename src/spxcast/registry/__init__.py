"""MLflow tracking and model registry: registration, aliases, lifecycle, promotion gates, audit, lineage."""

from spxcast.registry.gates import GateReport, GateResult
from spxcast.registry.lifecycle import ModelRegistry, PromotionRefused, PromotionResult, VersionInfo
from spxcast.registry.lineage import Lineage
from spxcast.registry.registration import RegistrationResult, register_run
from spxcast.registry.store import CHALLENGER, CHAMPION, PREVIOUS_CHAMPION, Stage, registered_model_name

__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "PREVIOUS_CHAMPION",
    "GateReport",
    "GateResult",
    "Lineage",
    "ModelRegistry",
    "PromotionRefused",
    "PromotionResult",
    "RegistrationResult",
    "Stage",
    "VersionInfo",
    "register_run",
    "registered_model_name",
]

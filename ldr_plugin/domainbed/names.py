"""Names DomainBed orders its tables by (facts of DomainBed @ b93c22a, kept as data, no DomainBed import).

``collect_results`` orders algorithm rows by ``algorithms.ALGORITHMS`` (unknown names last, in order
of first appearance) and keeps only datasets in ``datasets.DATASETS`` with environment names from
each dataset class's ``ENVIRONMENTS``. We keep unknown datasets too (sorted after the known ones),
with environment names from a spec, a registered ``domainbed.datasets`` class, or ``env<i>``.
"""

from __future__ import annotations

import functools

ALGORITHM_ORDER: tuple[str, ...] = (
    "ERM", "ERMPlusPlus", "Fish", "IRM", "GroupDRO", "Mixup", "MLDG", "CORAL", "MMD", "DANN", "CDANN",
    "MTL", "SagNet", "ARM", "VREx", "RSC", "SD", "ANDMask", "SANDMask", "IGA", "SelfReg", "Fishr", "TRM",
    "IB_ERM", "IB_IRM", "CAD", "CondCAD", "Transfer", "CausIRL_CORAL", "CausIRL_MMD", "EQRM", "RDM",
    "ADRMX", "URM",
)

DATASET_ENVIRONMENTS: dict[str, tuple[str, ...]] = {
    "Debug28": ("0", "1", "2"),
    "Debug224": ("0", "1", "2"),
    "ColoredMNIST": ("+90%", "+80%", "-90%"),
    "RotatedMNIST": ("0", "15", "30", "45", "60", "75"),
    "VLCS": ("C", "L", "S", "V"),
    "PACS": ("A", "C", "P", "S"),
    "OfficeHome": ("A", "C", "P", "R"),
    "TerraIncognita": ("L100", "L38", "L43", "L46"),
    "DomainNet": ("clip", "info", "paint", "quick", "real", "sketch"),
    "SVIRO": ("aclass", "escape", "hilux", "i3", "lexus", "tesla", "tiguan", "tucson", "x5", "zoe"),
    "WILDSCamelyon": ("hospital_0", "hospital_1", "hospital_2", "hospital_3", "hospital_4"),
    "WILDSFMoW": ("region_0", "region_1", "region_2", "region_3", "region_4", "region_5"),
    "SpawriousO2O_easy": ("Test", "SC_group_1", "SC_group_2"),
    "SpawriousO2O_medium": ("Test", "SC_group_1", "SC_group_2"),
    "SpawriousO2O_hard": ("Test", "SC_group_1", "SC_group_2"),
    "SpawriousM2M_easy": ("Test", "SC_group_1", "SC_group_2"),
    "SpawriousM2M_medium": ("Test", "SC_group_1", "SC_group_2"),
    "SpawriousM2M_hard": ("Test", "SC_group_1", "SC_group_2"),
}
DATASET_ORDER: tuple[str, ...] = tuple(DATASET_ENVIRONMENTS)


def order_algorithms(names: list[str]) -> list[str]:
    """DomainBed's row order: known algorithms in ALGORITHMS order, then the rest as first seen."""
    present = set(names)
    return [n for n in ALGORITHM_ORDER if n in present] + [n for n in names if n not in ALGORITHM_ORDER]


def order_datasets(names: list[str], *, domainbed_only: bool = False) -> list[str]:
    """Known datasets in DATASETS order, then (unless ``domainbed_only``) unknown ones sorted."""
    present = set(names)
    known = [d for d in DATASET_ORDER if d in present]
    return known if domainbed_only else known + sorted(present - set(DATASET_ORDER))


def environment_names(dataset: str, n_envs: int, overrides: dict[str, list[str]] | None = None) -> list[str]:
    """Column names of a dataset's test environments (see module docstring for the precedence)."""
    if overrides and dataset in overrides:
        return list(overrides[dataset])
    if dataset in DATASET_ENVIRONMENTS:
        return list(DATASET_ENVIRONMENTS[dataset])
    registered = registered_environments(dataset)
    if registered is not None and len(registered) == n_envs:
        return list(registered)
    return [f"env{i}" for i in range(n_envs)]


@functools.cache
def registered_environments(dataset: str) -> list[str] | None:
    """ENVIRONMENTS of a ``domainbed.datasets`` entry point of that name, if one loads (else None)."""
    from importlib.metadata import entry_points

    for entry in entry_points(group="domainbed.datasets"):
        if entry.name == dataset:
            try:
                envs = getattr(entry.load(), "ENVIRONMENTS", None)
            except Exception:  # a broken provider must not break a leaderboard  # noqa: BLE001
                return None
            return [str(e) for e in envs] if envs else None
    return None

"""DomainBed run directories as a model source: ``domainbed:<path to run dir>``.

``domainbed:<run dir>`` is the run's final ``model.pkl``; ``domainbed:<run dir>/model_step<k>.pkl``
is the checkpoint of step ``k`` (written with ``--save_model_every_checkpoint``), the one a
selection method may pick. A run's ``model.pkl`` (DomainBed's format, written by DomainBed's
``train.py`` or this project's loop: ``args``, ``model_input_shape``, ``model_num_classes``,
``model_num_domains``, ``model_hparams``, ``model_dict``) is rebuilt through the name resolution the training loop uses
(plugins such as LatentDR, DomainBed's own when importable, else the host-free ERM twin).
Layers: ``featurizer`` (the algorithm's featurizer output) and ``logits``. The run's datasets are
its environments, split in/out exactly as training split them (``env{i}_in`` / ``env{i}_out``).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ldr_plugin.datasets.samples import ScoringData
from ldr_plugin.domainbed.extras import parse_run_model_id
from ldr_plugin.domainbed.host import resolve_algorithm, resolve_dataset
from ldr_plugin.domainbed.hparams_table import seed_hash
from ldr_plugin.domainbed.loaders import split_dataset
from ldr_plugin.domainbed.runs import read_run_records
from ldr_plugin.errors import LdrError
from ldr_plugin.leaderboard.tables import ModelFacts
from ldr_plugin.sources.base import CheckpointError, LoadedModel, ModelSource, flatten_features
from ldr_plugin.sources.checkpoints import explain_load_error, sniff_checkpoint
from ldr_plugin.sources.loading import check_filled, guarded_load

LAYERS = ("featurizer", "logits")
HELDOUT_TEXT = ("trained by ldr-plugin (DomainBed protocol): accuracy of the final model on the run's "
                "held-out (test) domain, from the run's results.jsonl")
REQUIRED_KEYS = ("args", "model_input_shape", "model_num_classes", "model_num_domains", "model_hparams", "model_dict")


def model_file(identifier: str | Path) -> Path:
    """The checkpoint file an id names: ``<run>/model.pkl``, or the ``.pkl`` file itself."""
    path = Path(identifier)
    return path if path.suffix == ".pkl" else path / "model.pkl"


def read_model_pkl(identifier: str | Path, *, trust_checkpoint: bool = False) -> dict[str, Any]:
    """The run's ``model.pkl`` or named checkpoint (``weights_only`` unless trusted), its keys checked.

    The last file read is kept (keyed by path, size and modification time): scoring a run reads
    it once for the model and once per environment cell for the run's arguments. Callers must
    not modify the returned dict.
    """
    path = model_file(identifier)
    if not path.is_file():
        if path.name != "model.pkl":
            raise CheckpointError(f"DomainBed run {path.parent}: no {path.name} (was it trained with "
                                  "--save_model_every_checkpoint, and is that step one of its checkpoints?)")
        raise CheckpointError(f"DomainBed run {identifier}: no model.pkl (is the run finished? is this a run directory?)")
    stat = path.stat()
    return _read_checked(str(path), stat.st_size, stat.st_mtime_ns, trust_checkpoint)


@functools.lru_cache(maxsize=1)
def _read_checked(file: str, size: int, mtime_ns: int, trust_checkpoint: bool) -> dict[str, Any]:
    path = Path(file)
    sniff_checkpoint(path)
    try:
        save = torch.load(path, map_location="cpu", weights_only=not trust_checkpoint)
    except Exception as exc:
        raise explain_load_error(exc, [str(path)], f"domainbed:{path}") from exc
    missing = [k for k in REQUIRED_KEYS if not isinstance(save, dict) or k not in save]
    if missing:
        raise CheckpointError(f"{path}: not a DomainBed model.pkl, missing key(s) {', '.join(missing)}")
    return save


class DomainBedRunSource(ModelSource):
    """Trained DomainBed-format runs; ids are run-directory paths (there is no list of them)."""

    name = "domainbed"
    layers = LAYERS

    def check_ids(self, identifiers: list[str]) -> None:
        """Runs are folders, not entries of a list: whether one exists is :meth:`check_available`'s question."""

    def required_files(self, identifier: str, weights_dir: str | Path | None = None) -> list[tuple[str, str]]:
        path = model_file(identifier)
        what = ("a finished training run (ldr train / DomainBed train.py)" if path.name == "model.pkl"
                else "a checkpoint of a run trained with --save_model_every_checkpoint")
        return [(str(path), what)]

    def load(self, identifier: str, *, weights_dir: str | Path | None = None, device: str | torch.device = "cpu",
             trust_checkpoint: bool = False) -> LoadedModel:
        """Rebuild the run's algorithm from ``model.pkl`` and expose its featurizer."""
        save = read_model_pkl(identifier, trust_checkpoint=trust_checkpoint)
        name = save["args"].get("algorithm")
        algorithm = resolve_algorithm(name)(
            tuple(save["model_input_shape"]), save["model_num_classes"], save["model_num_domains"], save["model_hparams"]
        )
        try:
            with guarded_load(trust_checkpoint=trust_checkpoint) as log:
                algorithm.load_state_dict(save["model_dict"])
        except RuntimeError as exc:
            raise explain_load_error(exc, [str(model_file(identifier))], f"domainbed:{identifier}") from exc
        used = tuple(f"{part}." for part in ("featurizer", "classifier") if hasattr(algorithm, part)) or ("",)
        check_filled(algorithm, log, [str(model_file(identifier))], f"domainbed:{identifier}", parts=used)
        algorithm.to(device).eval()
        if not hasattr(algorithm, "featurizer"):
            raise LdrError(f"domainbed:{identifier}: algorithm {name} has no 'featurizer'; its features are undefined")

        @torch.no_grad()
        def extract(images: torch.Tensor, layers: tuple[str, ...]) -> dict[str, torch.Tensor]:
            z = algorithm.featurizer(images)
            out = {"featurizer": flatten_features(z)}
            if "logits" in layers:
                head = getattr(algorithm, "classifier", None)
                out["logits"] = flatten_features(head(z) if head is not None else algorithm.predict(images))
            return {k: out[k] for k in layers}

        preprocessing = {"host": "the run's dataset (DomainBed dataset tensors, as in training)",
                         "dataset": save["args"].get("dataset")}
        detail = {"algorithm": name, "args": save["args"], "files": [str(model_file(identifier))],
                  "hooked": "featurizer (output)"}
        return LoadedModel(f"domainbed:{identifier}", algorithm, None, LAYERS, extract, preprocessing, detail)

    def own_datasets(self, identifier: str) -> list[str]:
        """``env0`` … ``env{n-1}`` of the run's dataset."""
        save = read_model_pkl(identifier)
        return [f"env{i}" for i in range(len(self._dataset_class(save).ENVIRONMENTS))]

    def own_dataset(self, identifier: str, name: str, split: str, *, n_per_class: int | None = None,
                    seed: int = 0) -> ScoringData:
        """The ``in`` or ``out`` split of one environment, split as training split it, then subsampled."""
        save = read_model_pkl(identifier)
        args = save["args"]
        cls = self._dataset_class(save)
        env_i = self._env_index(name, len(cls.ENVIRONMENTS))
        if split not in ("in", "out"):
            raise LdrError(f"a run's environments have splits 'in' and 'out', not '{split}'")
        domain = cls(args.get("data_dir"), args.get("test_envs", []), save["model_hparams"])[env_i]
        holdout = int(len(domain) * args.get("holdout_fraction", 0.2))
        split_seed = seed_hash(args.get("trial_seed", 0), env_i)  # what train.py seeds env_i's split with
        out_part, in_part = split_dataset(domain, holdout, split_seed)
        if env_i in args.get("test_envs", []):  # DomainBed re-splits a test env (uda_holdout_fraction)
            uda = int(len(in_part) * args.get("uda_holdout_fraction", 0))
            _, in_part = split_dataset(in_part, uda, split_seed)
        part = in_part if split == "in" else out_part
        info = {"run": str(model_file(identifier).parent), "dataset_class": args.get("dataset"),
                "environment": cls.ENVIRONMENTS[env_i], "test_env": env_i in args.get("test_envs", []),
                "split_seed": split_seed}
        return ScoringData.subsampled(f"run:{name}", split, _Images(part), _labels(part),
                                      [str(c) for c in range(save["model_num_classes"])], n_per_class, seed, info)

    def describe(self, identifier: str, dataset: str) -> ModelFacts | None:
        """A run scored on its test environment (``run:env<t>``): its accuracy there at its last step (the
        model model.pkl holds), labelled ``"<algorithm> · <dataset> env<t> · trial <k> · <folder[:8]>"``,
        its held-out domain as the stratum and its algorithm as the group. A checkpoint
        (``<run>/model_step<k>.pkl`` or ``<run>@<k>``) is marked as such."""
        if parse_run_model_id(f"{self.name}:{identifier}")[1] is not None:
            return ModelFacts(checkpoint=True)
        match = re.fullmatch(r"run:(?:env)?(\d+)", dataset)
        records = read_run_records(identifier) if match else []
        if not records:
            return None
        last, args, env = records[-1], records[-1].get("args", {}), int(match.group(1))
        value = last.get(f"env{env}_in_acc") if args.get("test_envs", []) == [env] else None
        domain, trial = f"{args.get('dataset', '?')} env{env}", args.get("trial_seed")
        label = f"{args.get('algorithm', '?')} · {domain} · trial {'?' if trial is None else trial} · {Path(identifier).name[:8]}"
        return ModelFacts(label, {"heldout_acc_pct": None if value is None else 100.0 * float(value)}, domain,
                          str(args.get("algorithm", "?")), provenance=(HELDOUT_TEXT, "the runs' own results.jsonl"))

    @staticmethod
    def _dataset_class(save: dict) -> type:
        return resolve_dataset(save["args"].get("dataset"))

    @staticmethod
    def _env_index(env: str, n: int) -> int:
        if not env.startswith("env") or not env[3:].isdigit() or int(env[3:]) >= n:
            raise LdrError(f"unknown environment '{env}'; this run has env0 … env{n - 1}")
        return int(env[3:])


class _Images:
    """``part[i][0]``: the image tensor of a (x, y) dataset."""

    def __init__(self, part: Any):
        self.part = part

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.part[i][0]

    def __len__(self) -> int:
        return len(self.part)


def _labels(part: Any) -> np.ndarray:
    base = getattr(part, "underlying_dataset", None)
    keys = getattr(part, "keys", None)
    tensors = getattr(base, "tensors", None)
    if tensors is not None and keys is not None and not hasattr(base, "underlying_dataset"):
        return tensors[1][keys].numpy().astype(np.int64)
    targets = getattr(base, "targets", None)
    if targets is not None and keys is not None and not hasattr(base, "underlying_dataset"):
        return np.asarray(targets, dtype=np.int64)[keys]
    return np.asarray([int(part[i][1]) for i in range(len(part))], dtype=np.int64)

"""The contract between conversion, training, prediction and evaluation: the ``"unisemi"`` block of dataset.json.

A unified dataset has K tasks with ids 1..K. Label value k is task k's foreground, value K+1 is nnU-Net's
``ignore`` label and fills the label files of unlabeled training cases. The synthetic task (paper's Task#K+1)
is prompt id K+1 (prompts are 1-based here; the network's one-hot index is ``prompt - 1``).

dataset.json::

    {"channel_names": {"0": "image"},
     "labels": {"background": 0, "<task 1>": 1, ..., "<task K>": K, "ignore": K+1},
     "unisemi": {"tasks": [{"id": 1, "name": "...", "modality": "CT" | "MRI", ...}, ...],
                 "case_to_task": {"<case id>": <task id>, ...},      # every case, test cases included
                 "labeled": [...], "unlabeled": [...], "test": [...],  # case ids
                 "label_budget": {...}}}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

UNISEMI_KEY = "unisemi"


@dataclass(frozen=True)
class Task:
    id: int
    name: str
    modality: str


@dataclass
class UnifiedDatasetInfo:
    tasks: list[Task]
    case_to_task: dict[str, int]
    labeled: list[str]
    unlabeled: list[str]
    test: list[str] = field(default_factory=list)
    label_budget: dict = field(default_factory=dict)

    # --- construction -------------------------------------------------------------------------------------------
    @classmethod
    def from_dataset_json(cls, dataset_json: dict | str | os.PathLike) -> UnifiedDatasetInfo:
        if not isinstance(dataset_json, dict):
            path = Path(dataset_json)
            if path.is_dir():
                path = path / "dataset.json"
            with open(path, encoding="utf-8") as f:
                dataset_json = json.load(f)
        if UNISEMI_KEY not in dataset_json:
            raise ValueError(
                "dataset.json has no 'unisemi' block: this is not a unified UniSeMi dataset. Build one with "
                "nnUNetv2_unisemi_convert."
            )
        block = dataset_json[UNISEMI_KEY]
        tasks = [Task(int(t["id"]), str(t["name"]), str(t.get("modality", "unknown"))) for t in block["tasks"]]
        info = cls(
            tasks=sorted(tasks, key=lambda t: t.id),
            case_to_task={k: int(v) for k, v in block["case_to_task"].items()},
            labeled=list(block["labeled"]),
            unlabeled=list(block["unlabeled"]),
            test=list(block.get("test", [])),
            label_budget=dict(block.get("label_budget", {})),
        )
        info.validate()
        return info

    def to_json_block(self) -> dict:
        return {
            "tasks": [{"id": t.id, "name": t.name, "modality": t.modality} for t in self.tasks],
            "case_to_task": dict(sorted(self.case_to_task.items())),
            "labeled": sorted(self.labeled),
            "unlabeled": sorted(self.unlabeled),
            "test": sorted(self.test),
            "label_budget": self.label_budget,
        }

    def validate(self) -> None:
        ids = [t.id for t in self.tasks]
        if ids != list(range(1, len(ids) + 1)):
            raise ValueError(f"task ids must be 1..K without gaps, got {ids}")
        if len({t.name for t in self.tasks}) != len(self.tasks):
            raise ValueError(f"task names must be unique, got {[t.name for t in self.tasks]}")
        groups = {"labeled": set(self.labeled), "unlabeled": set(self.unlabeled), "test": set(self.test)}
        for a, b in (("labeled", "unlabeled"), ("labeled", "test"), ("unlabeled", "test")):
            both = groups[a] & groups[b]
            if both:
                raise ValueError(f"cases are both {a} and {b}: {sorted(both)[:5]}")
        for case in set().union(*groups.values()):
            if self.case_to_task.get(case) not in ids:
                raise ValueError(f"case {case} has no valid task in case_to_task")

    # --- derived quantities -------------------------------------------------------------------------------------
    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    @property
    def synthetic_prompt(self) -> int:
        """Prompt id of the synthetic 'all foreground' task (paper's Task#K+1)."""
        return self.num_tasks + 1

    @property
    def num_prompts(self) -> int:
        return self.num_tasks + 1

    @property
    def ignore_label(self) -> int:
        return self.num_tasks + 1

    def task_by_name_or_id(self, key: str | int) -> Task:
        """Resolve a user-given task name (case-insensitive) or id; clear error otherwise."""
        for t in self.tasks:
            if str(key).lower() in (t.name.lower(), str(t.id)):
                return t
        known = ", ".join(f"{t.id}={t.name}" for t in self.tasks)
        raise KeyError(f"unknown task '{key}'. This model knows: {known}")

    def labeled_cases_of_task(self, task_id: int) -> list[str]:
        return sorted(c for c in self.labeled if self.case_to_task[c] == task_id)

    def semi_supervised_splits(self) -> list[dict[str, list[str]]]:
        """nnU-Net splits for semi-supervised training: one fold.

        Fold 0 trains on every labeled and unlabeled training case. Its 'val' list is the labeled cases: with
        3-8 labels per task no case can be spared for a validation set, so nnU-Net's validation becomes a
        training-fit monitor (like nnU-Net's own fold 'all'); generalisation is measured on the test cases,
        which appear in no split.
        """
        return [{"train": sorted(self.labeled + self.unlabeled), "val": sorted(self.labeled)}]

"""The labeled loader's task balance and foreground oversampling (no files needed: only the sampling is exercised)."""

import types

import numpy as np

from nnunetv2_unisemi.data_loading import TaskBalancedDataLoader


def loader(batch_size: int, per_task_oversampling: bool) -> TaskBalancedDataLoader:
    cases = {f"case_{t}_{i}": t for t in (1, 2, 3) for i in range(4)}
    data = types.SimpleNamespace(identifiers=sorted(cases))
    labels = types.SimpleNamespace(all_labels=[0, 1, 2, 3], has_ignore_label=False)
    return TaskBalancedDataLoader(data, batch_size, (8, 8, 8), (8, 8, 8), labels, cases,
                                  oversample_foreground_percent=0.33, per_task_oversampling=per_task_oversampling)


def forced_per_task(dl: TaskBalancedDataLoader) -> tuple[list[int], list[bool]]:
    tasks = [int(k.split("_")[1]) for k in dl.get_indices()]
    return tasks, [dl.get_do_oversample(j) for j in range(len(tasks))]


def test_per_task_oversampling_forces_one_of_each_tasks_two_patches_like_a_per_task_batch_of_two():
    np.random.seed(0)
    dl = loader(6, per_task_oversampling=True)
    for _ in range(20):
        tasks, forced = forced_per_task(dl)
        assert sorted(tasks) == [1, 1, 2, 2, 3, 3]
        for task in (1, 2, 3):
            own = [f for t, f in zip(tasks, forced) if t == task]
            assert own == [False, True]  # nnU-Net's rule on a batch of 2: the second patch is foreground


def test_default_oversampling_is_nnunets_rule_over_the_whole_batch():
    np.random.seed(0)
    dl = loader(6, per_task_oversampling=False)
    forced_tasks = set()
    for _ in range(20):
        tasks, forced = forced_per_task(dl)
        assert forced == [False] * 4 + [True] * 2  # round(6 * 0.67) = 4: the last 2 of 6, whichever tasks they are
        forced_tasks.add(frozenset(t for t, f in zip(tasks, forced) if f))
    assert all(len(f) == 2 for f in forced_tasks)  # one task of three goes without a foreground patch

"""Metrics against analytic answers and against an independent implementation on real masks from ../shared/data.

The independent implementation shares no code with medpy: surface voxels come from explicit neighbour checks on a
zero-padded array, distances from a k-d tree over surface-voxel centres in millimetres.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import cKDTree

from nnunetv2_unisemi.evaluation.metrics import compute_binary_metrics, union_bounding_box

DATA_ROOT = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_data(*parts: str) -> Path:
    path = DATA_ROOT.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared real data not available at {path} (tests on real masks need ../shared/data)")
    return path


# --- independent reference implementation ----------------------------------------------------------------------
def surface_voxels(mask: np.ndarray) -> np.ndarray:
    """Foreground voxels with at least one face neighbour in the background (outside the array is background)."""
    padded = np.pad(mask.astype(bool), 1, constant_values=False)
    inner = tuple(slice(1, -1) for _ in range(mask.ndim))
    interior = mask.astype(bool).copy()
    for axis in range(mask.ndim):
        for step in (-1, 1):
            shifted = tuple(
                slice(1 + step, padded.shape[a] - 1 + step) if a == axis else inner[a] for a in range(mask.ndim)
            )
            interior &= padded[shifted]
    return mask.astype(bool) & ~interior


def directed_distances(a: np.ndarray, b: np.ndarray, spacing) -> np.ndarray:
    pa = np.argwhere(surface_voxels(a)) * np.asarray(spacing, dtype=float)
    pb = np.argwhere(surface_voxels(b)) * np.asarray(spacing, dtype=float)
    return cKDTree(pb).query(pa)[0]


def reference_metrics(pred: np.ndarray, ref: np.ndarray, spacing) -> dict:
    p, r = pred.astype(bool), ref.astype(bool)
    inter = np.count_nonzero(p & r)
    d_pr, d_rp = directed_distances(p, r, spacing), directed_distances(r, p, spacing)
    pooled = np.concatenate([d_pr, d_rp])
    return {
        "dice": 2 * inter / (p.sum() + r.sum()),
        "jaccard": inter / np.count_nonzero(p | r),
        "asd": d_pr.mean(),
        "hd95": np.percentile(pooled, 95),
        "assd": pooled.mean(),
    }


def assert_matches_reference(pred, ref, spacing):
    got = compute_binary_metrics(pred, ref, spacing).as_dict()
    want = reference_metrics(pred, ref, spacing)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-9), key
    return got


def shift(mask: np.ndarray, offsets) -> np.ndarray:
    """Shift without wrap-around (np.roll would carry voxels to the opposite border)."""
    out = np.zeros_like(mask)
    src = tuple(slice(max(-o, 0), mask.shape[a] - max(o, 0)) for a, o in enumerate(offsets))
    dst = tuple(slice(max(o, 0), mask.shape[a] - max(-o, 0)) for a, o in enumerate(offsets))
    out[dst] = mask[src]
    return out


# --- synthetic masks with known answers ---------------------------------------------------------------------------
def plate(shape, axis: int, index: int) -> np.ndarray:
    """A one-voxel-thick square plate perpendicular to ``axis``: every voxel is a surface voxel."""
    mask = np.zeros(shape, bool)
    sl = [slice(4, 12)] * 3
    sl[axis] = slice(index, index + 1)
    mask[tuple(sl)] = True
    return mask


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_plates_shifted_along_an_axis_are_n_times_that_axis_spacing_apart(axis):
    spacing = (2.5, 0.7, 1.3)
    n = 3
    ref, pred = plate((16, 16, 16), axis, 5), plate((16, 16, 16), axis, 5 + n)
    m = compute_binary_metrics(pred, ref, spacing)
    # Each plate voxel's nearest partner lies straight across the gap.
    assert m.asd == pytest.approx(n * spacing[axis])
    assert m.hd95 == pytest.approx(n * spacing[axis])
    assert m.assd == pytest.approx(n * spacing[axis])
    assert m.dice == 0.0 and m.jaccard == 0.0


def test_spacing_is_read_in_numpy_axis_order():
    ref, pred = plate((16, 16, 16), 0, 5), plate((16, 16, 16), 0, 7)
    along_0 = compute_binary_metrics(pred, ref, (3.0, 1.0, 1.0)).hd95
    reversed_order = compute_binary_metrics(pred, ref, (1.0, 1.0, 3.0)).hd95
    assert along_0 == pytest.approx(6.0)
    assert reversed_order == pytest.approx(2.0)
    # Overlap metrics do not depend on spacing.
    assert compute_binary_metrics(pred, ref, (3.0, 1.0, 1.0)).dice == compute_binary_metrics(pred, ref).dice


def test_cubes_shifted_along_an_axis_have_analytic_overlap():
    L, n = 10, 3
    ref = np.zeros((20, 20, 20), bool)
    ref[2 : 2 + L, 5 : 5 + L, 5 : 5 + L] = True
    pred = shift(ref, (n, 0, 0))
    m = compute_binary_metrics(pred, ref, (0.5, 0.8, 0.8))
    assert m.dice == pytest.approx((L - n) / L)
    assert m.jaccard == pytest.approx((L - n) / (L + n))
    # The caps are n*0.5 mm apart along axis 0, which bounds every surface distance from above.
    assert 0 < m.asd < n * 0.5
    assert m.hd95 == pytest.approx(n * 0.5)


def test_asd_is_prediction_to_reference_and_hd95_pools_both_directions():
    ref = plate((16, 16, 40), 0, 5)  # 8x8 = 64 voxels at axis-0 index 5
    pred = ref.copy()
    pred[5, 8, 30:33] = True  # 3 stray voxels 18..20 voxels away from the plate
    m = compute_binary_metrics(pred, ref)
    reverse = compute_binary_metrics(ref, pred)
    # pred→ref: 64 zeros and 3 far distances; ref→pred: all 64 zero.
    assert m.asd == pytest.approx(np.mean([0] * 64 + [19, 20, 21]))
    assert reverse.asd == 0.0
    assert m.assd == pytest.approx((19 + 20 + 21) / (64 + 67))
    # 3 of 131 pooled distances are non-zero (2.3%): the pooled 95th percentile is 0.
    assert m.hd95 == 0.0
    pred[5, 9, 30:36] = True  # now 9 strays: 9/73 = 12% of pred→ref, 9/137 = 6.6% pooled
    m = compute_binary_metrics(pred, ref)
    pooled = np.sort(np.concatenate([directed_distances(pred, ref, (1, 1, 1)), np.zeros(64)]))
    assert m.hd95 == pytest.approx(np.percentile(pooled, 95))
    assert m.hd95 < np.percentile(directed_distances(pred, ref, (1, 1, 1)), 95)


# --- empty-mask policy ---------------------------------------------------------------------------------------------
def test_both_empty_is_a_perfect_match():
    empty = np.zeros((8, 8, 8), bool)
    m = compute_binary_metrics(empty, empty, (1.0, 2.0, 3.0))
    assert (m.dice, m.jaccard, m.asd, m.hd95, m.assd) == (1.0, 1.0, 0.0, 0.0, 0.0)
    assert m.pred_empty and m.ref_empty


@pytest.mark.parametrize("pred_is_empty", [True, False])
def test_one_empty_gives_zero_overlap_and_undefined_distances(pred_is_empty):
    empty = np.zeros((8, 8, 8), bool)
    full = empty.copy()
    full[2:5, 2:5, 2:5] = True
    pred, ref = (empty, full) if pred_is_empty else (full, empty)
    m = compute_binary_metrics(pred, ref, (1.0, 1.0, 1.0))
    assert m.dice == 0.0 and m.jaccard == 0.0
    assert all(math.isnan(v) for v in (m.asd, m.hd95, m.assd))
    assert (m.pred_empty, m.ref_empty) == (pred_is_empty, not pred_is_empty)
    assert compute_binary_metrics(pred, ref, distance_if_one_empty=0.0).hd95 == 0.0


def test_shape_and_spacing_errors():
    with pytest.raises(ValueError, match="shape"):
        compute_binary_metrics(np.ones((4, 4, 4)), np.ones((4, 4, 5)))
    with pytest.raises(ValueError, match="spacing"):
        compute_binary_metrics(np.ones((4, 4, 4)), np.ones((4, 4, 4)), (1.0, 1.0))


# --- cropping changes nothing ------------------------------------------------------------------------------------
def test_crop_to_union_box_gives_the_uncropped_numbers_also_at_the_array_border():
    rng = np.random.default_rng(0)
    ref = ndimage.binary_dilation(rng.random((30, 40, 24)) > 0.995, iterations=3)
    ref[:, :5, :] |= rng.random((30, 5, 24)) > 0.5  # objects touching the array border
    pred = shift(ndimage.binary_erosion(ref), (1, -2, 0)) | (rng.random(ref.shape) > 0.999)
    spacing = (2.0, 0.6, 1.1)
    full = compute_binary_metrics(pred, ref, spacing, crop_margin=None)
    for margin in (1, 2, 5):
        assert compute_binary_metrics(pred, ref, spacing, crop_margin=margin) == full
    assert_matches_reference(pred, ref, spacing)


def test_union_bounding_box():
    a = np.zeros((10, 10, 10), bool)
    b = a.copy()
    a[2, 3, 4] = True
    b[7, 5, 9] = True
    assert union_bounding_box(a, b, margin=1) == (slice(1, 9), slice(2, 7), slice(3, 10))
    assert union_bounding_box(a & False, b & False) is None


# --- real masks ----------------------------------------------------------------------------------------------------
def load_la_label(case: str) -> np.ndarray:
    h5py = pytest.importorskip("h5py")
    path = shared_data("LA2018_h5", "2018LA_Seg_Training Set", case, "mri_norm2.h5")
    with h5py.File(path, "r") as f:
        return f["label"][:].astype(bool)


@pytest.mark.shared_data
@pytest.mark.parametrize("case", ["06SR5RBREL16DQ6M8LWS", "1D7CUD1955YZPGK8XHJX"])
def test_left_atrium_simulated_predictions_match_independent_computation(case):
    ref = load_la_label(case)
    spacing = (0.625, 0.625, 0.625)  # the challenge's isotropic resolution
    ball = ndimage.generate_binary_structure(3, 1)
    predictions = {
        "eroded": ndimage.binary_erosion(ref, ball, iterations=2),
        "dilated": ndimage.binary_dilation(ref, ball, iterations=3),
        "shifted": shift(ref, (4, 0, -2)),
    }
    results = {name: assert_matches_reference(pred, ref, spacing) for name, pred in predictions.items()}
    # A 3-voxel dilation moves the face-on surface out by 3 * 0.625 mm: 95HD cannot exceed that.
    assert 0 < results["dilated"]["hd95"] <= 3 * 0.625 + 1e-9
    assert results["eroded"]["dice"] > 0.8 and results["shifted"]["hd95"] > 0


@pytest.mark.shared_data
def test_hippocampus_anterior_vs_posterior_match_independent_computation():
    sitk = pytest.importorskip("SimpleITK")
    files = sorted(shared_data("Task04_Hippocampus", "labelsTr").glob("hippocampus_*.nii.gz"))[:3]
    for file in files:
        image = sitk.ReadImage(str(file))
        label = sitk.GetArrayFromImage(image)
        spacing = image.GetSpacing()[::-1]
        # A wrong organ (posterior for anterior) and a dilated one: large and small errors on real anatomy.
        assert_matches_reference(label == 2, label == 1, spacing)
        assert_matches_reference(ndimage.binary_dilation(label == 1), label == 1, spacing)


@pytest.mark.shared_data
def test_abdomen_ct_masks_at_anisotropic_spacing():
    sitk = pytest.importorskip("SimpleITK")
    folder = shared_data("ct_samples", "abdomen_ct")
    spleen = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "abdomen_ct_spleen.nii.gz"))) > 0
    pancreas = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "abdomen_ct_pancreas.nii.gz"))) > 0
    pred = shift(spleen, (1, 2, 0))
    thick_slices, iso = (3.0, 0.8, 0.8), (3.0, 3.0, 3.0)
    a = assert_matches_reference(pred, spleen, thick_slices)
    b = assert_matches_reference(pred, spleen, iso)
    # Same voxels, different geometry: in-plane distances shrink with in-plane spacing, so every distance drops.
    assert a["dice"] == b["dice"]
    assert a["hd95"] < b["hd95"] and a["asd"] < b["asd"]
    assert_matches_reference(pancreas, spleen, thick_slices)  # two disjoint organs, far apart

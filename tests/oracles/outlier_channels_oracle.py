#!/usr/bin/env python3
"""numpy restatement of the paper's outlier-channel rule and channel sets, and of the PCR
bootstrap, for tests/eval/diagnosis_test.cpp (fixture tests/eval/fixtures/outlier_channels_oracle.json).

The paper (experiments/run_pcr_prediction.py, run_channel_ablation.py of the authors' code, numpy
2.2.6 pinned) takes channel_max = max |K| per channel as a float32 array, then

    threshold = np.percentile(channel_max, 95)            # numpy's default, method="linear"
    outliers  = np.where(channel_max >= threshold)[0]
    np.random.seed(42); random = np.random.choice(n, len(outliers), replace=False)

and for the channel ablation: non-outliers (the complement), low = channel_max <= the 50th
percentile, its first 100 by index, and after one np.random.seed(42) the random subsets of
int(n * pct / 100) channels for pct in 1, 5, 10, 25, 50, drawn one after another.

numpy >= 2 computes the percentile of a float32 array in float32 (q = 95 / float32(100), then
every step of _lerp in float32); numpy 1.x widens to float64. This script computes the float32
threshold with np.percentile itself when numpy >= 2, and with a step-by-step float32
restatement of numpy 2's code otherwise (Debian's python3-numpy is 1.24); when both are
available it asserts they agree. The float64 threshold (the rule on float64 data) is always
np.percentile itself. The random sets are numpy's legacy generator itself, in any version.

The bootstrap half restates eval/diagnosis.h's estimate_pcr from its header (SplitMix64 as
tests/oracles/prompt_sampling_oracle.py, np.percentile for the bounds), not from the C++.

    /usr/bin/python3 tests/oracles/outlier_channels_oracle.py            # writes the fixture
    /usr/bin/python3 tests/oracles/outlier_channels_oracle.py --write-input  # regenerates the input

Input: tests/eval/fixtures/outlier_channels_input.json (made once by --write-input from a seeded
generator, then committed; the fixture is what this script prints from it).
"""

import json
import sys
from pathlib import Path

import numpy as np

from prompt_sampling_oracle import SplitMix64  # same folder: Python puts it on sys.path

ROOT = Path(__file__).resolve().parents[2]
INPUT = ROOT / "tests" / "eval" / "fixtures" / "outlier_channels_input.json"
OUTPUT = ROOT / "tests" / "eval" / "fixtures" / "outlier_channels_oracle.json"
NUMPY_2 = int(np.__version__.split(".")[0]) >= 2


def f32_list(array):
    """float32 values as JSON numbers: the shortest repr of the (exact) float64 widening."""
    return [float(x) for x in np.asarray(array, dtype=np.float32)]


def percentile_f32_restated(values, percentile):
    """numpy 2's percentile (method='linear') of a float32 array, step by step in float32."""
    a = np.sort(np.asarray(values, dtype=np.float32))
    n = len(a)
    q = np.float32(percentile) / np.float32(100)
    v = np.float32(n - 1) * q
    if v >= np.float32(n - 1):
        return a[n - 1]
    i = int(np.floor(v))
    g = v - np.float32(i)
    lo, hi = a[i], a[i + 1]
    d = hi - lo
    if g >= np.float32(0.5):
        return np.float32(hi - d * (np.float32(1) - g))
    return np.float32(lo + d * g)


def percentile_f32(values, percentile):
    restated = percentile_f32_restated(values, percentile)
    if NUMPY_2:
        direct = np.percentile(np.asarray(values, dtype=np.float32), percentile)
        assert direct.dtype == np.float32 and direct == restated, (direct, restated)
    return np.float32(restated)


def channel_sets(channel_max, outlier_fraction=0.05, with_ablation=False):
    x32 = np.asarray(channel_max, dtype=np.float32)
    x64 = x32.astype(np.float64)
    n = len(x32)
    percentile = 100 * (1 - outlier_fraction)
    t32 = percentile_f32(x32, percentile)
    t64 = np.percentile(x64, percentile)
    outliers = np.where(x32 >= t32)[0].tolist()
    np.random.seed(42)
    random_control = np.random.choice(n, len(outliers), replace=False).tolist()
    out = {
        "channels": n,
        "percentile": percentile,
        "threshold_f32": float(t32),
        "threshold_f32_bits": int(np.float32(t32).view(np.uint32)),
        "threshold_f64": float(t64),
        "outliers": outliers,
        "outliers_f64": np.where(x64 >= t64)[0].tolist(),
        "random_control_numpy_order": random_control,
    }
    if with_ablation:
        low_t = percentile_f32(x32, 50)
        low = np.where(x32 <= low_t)[0].tolist()
        np.random.seed(42)
        randoms = {}
        for pct in [1, 5, 10, 25, 50]:
            randoms[str(pct)] = np.random.choice(n, int(n * pct / 100), replace=False).tolist()
        out["ablation"] = {
            "non_outliers": [c for c in range(n) if c not in outliers],
            "low_threshold_f32": float(low_t),
            "low_magnitude": low[:100],
            "random": randoms,
        }
    return out


# SplitMix64 and its bounded draw: the prompt-sampling oracle's, the generator the bootstrap uses.


def pcr(per_channel_flip, per_tensor_flip):
    return 1.0 - per_channel_flip / per_tensor_flip if per_tensor_flip != 0 else 0.0


def bootstrap(case):
    pt, pc = case["per_tensor"], case["per_channel"]
    n = len(pt)
    rng = SplitMix64(case["seed"])
    reps, zero = [], 0
    for _ in range(case["resamples"]):
        a = c = 0
        for _ in range(n):
            j = rng.uniform(n)
            a += pt[j]
            c += pc[j]
        zero += a == 0
        reps.append(pcr(c / n, a / n))
    conf = case["confidence"]
    reps = np.asarray(reps, dtype=np.float64)
    return {
        "name": case["name"],
        "pcr": pcr(sum(pc) / n, sum(pt) / n),
        "lower": float(np.percentile(reps, 100 * (1 - conf) / 2)),
        "upper": float(np.percentile(reps, 100 * (1 + conf) / 2)),
        "zero_denominator_resamples": zero,
    }


def write_input():
    rng = np.random.RandomState(2606)
    # Captured keys of 3 prompts at one layer: 128 channels, a few of them outliers.
    scale = np.ones(128, dtype=np.float32)
    scale[[3, 17, 64, 90, 127]] = [9.0, 6.5, 12.0, 7.25, 5.5]
    prompts = []
    for tokens in (5, 9, 4):
        keys = (rng.standard_normal((tokens, 128)) * scale).astype(np.float32)
        prompts.append(f32_list(keys.reshape(-1)))
    one_ulp = float(np.nextafter(np.float32(1), np.float32(2)))
    adjacent = f32_list(rng.uniform(0.1, 0.9, 18)) + [1.0, one_ulp]
    ties = f32_list(rng.uniform(0.5, 4.5, 36)) + [5.0, 5.0, 5.0, 5.0]
    heavy = f32_list(np.abs(rng.standard_t(3, 512)) * 2.0)
    wide = f32_list(np.abs(rng.standard_normal(1024)) * np.where(rng.uniform(size=1024) < 0.03, 20.0, 1.0))
    data = {
        "note": "made by tests/oracles/outlier_channels_oracle.py --write-input (numpy RandomState(2606))",
        "key_cases": [{"name": "keys_128ch_3prompts", "channels": 128, "prompts": prompts}],
        "channel_max_cases": [
            {"name": "one_channel", "channel_max": [3.5]},
            {"name": "all_equal_20", "channel_max": [2.0] * 20},
            {"name": "adjacent_floats_20", "channel_max": adjacent},
            {"name": "ties_40", "channel_max": ties},
            {"name": "heavy_tail_512", "channel_max": heavy, "ablation": True},
            {"name": "wide_1024", "channel_max": wide, "outlier_fraction": 0.1},
        ],
        "bootstrap_cases": [
            # 19 refused calibration prompts: 10 per-tensor flips, 2 of them also per-channel, 1 per-channel only.
            {"name": "calibration_19", "per_tensor": [1] * 10 + [0] * 9,
             "per_channel": [1, 1] + [0] * 8 + [1] + [0] * 8, "resamples": 2000, "seed": 42, "confidence": 0.95},
            # One per-tensor flip: a third of the replicates have none (PCR* = 0 by convention).
            {"name": "one_flip_20", "per_tensor": [1] + [0] * 19, "per_channel": [0] * 20,
             "resamples": 1000, "seed": 7, "confidence": 0.9},
        ],
    }
    INPUT.write_text(json.dumps(data, indent=1) + "\n")


def main():
    if "--write-input" in sys.argv[1:]:
        write_input()
        return
    data = json.loads(INPUT.read_text())
    cases = []
    for case in data["key_cases"]:
        channels = case["channels"]
        stacked = np.concatenate([np.asarray(p, dtype=np.float32).reshape(-1, channels) for p in case["prompts"]])
        channel_max = np.abs(stacked).max(axis=0)  # the paper's all_acts.abs().max(dim=0)
        out = {"name": case["name"], "outlier_fraction": 0.05, "channel_max": f32_list(channel_max)}
        out.update(channel_sets(channel_max))
        cases.append(out)
    for case in data["channel_max_cases"]:
        out = {"name": case["name"], "outlier_fraction": case.get("outlier_fraction", 0.05),
               "channel_max": f32_list(case["channel_max"])}
        out.update(channel_sets(case["channel_max"], out["outlier_fraction"], case.get("ablation", False)))
        cases.append(out)
    fixture = {
        "generated_by": "tests/oracles/outlier_channels_oracle.py",
        "numpy": np.__version__,
        "float32_threshold_from": "np.percentile" if NUMPY_2 else "numpy 2 restated in float32 scalars",
        "cases": cases,
        "bootstrap": [bootstrap(case) for case in data["bootstrap_cases"]],
    }
    OUTPUT.write_text(json.dumps(fixture, indent=1) + "\n")
    for case in cases:
        print(f"{case['name']}: threshold {case['threshold_f32']!r} (f64 {case['threshold_f64']!r}), "
              f"{len(case['outliers'])} outliers of {case['channels']} (f64 rule: {len(case['outliers_f64'])})")
    for case in fixture["bootstrap"]:
        print(f"{case['name']}: PCR {case['pcr']:.4f} [{case['lower']:.4f}, {case['upper']:.4f}], "
              f"{case['zero_denominator_resamples']} replicates without a per-tensor flip")


if __name__ == "__main__":
    main()

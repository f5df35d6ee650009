#!/usr/bin/env python3
"""Independent implementation of eval/prompt_sampling.h's seeded draw, for the pinned values
in tests/eval/prompt_sampling_test.cpp (PinnedDraw). Written from the algorithm as the header
states it, in Python's arbitrary-precision integers (masked to 64 bits), not from the C++.

    python3 tests/oracles/prompt_sampling_oracle.py
"""

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def uniform(self, bound):
        threshold = ((1 << 64) - bound) % bound
        while True:
            r = self.next()
            if r >= threshold:
                return r % bound


def sample_indices(n, k, seed):
    indices = list(range(n))
    if k >= n:
        return indices
    rng = SplitMix64(seed)
    for i in range(k):
        j = i + rng.uniform(n - i)
        indices[i], indices[j] = indices[j], indices[i]
    return sorted(indices[:k])


if __name__ == "__main__":
    rng = SplitMix64(1234567)
    print("SplitMix64(1234567):", [rng.next() for _ in range(3)])
    for n, k, seed in [(10, 1, 7), (520, 20, 42), (100, 10, 0), (313, 50, 2606)]:
        print(f"sample_indices({n}, {k}, {seed}):", sample_indices(n, k, seed))

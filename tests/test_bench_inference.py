"""The timing helpers behind the real-time benchmark: medians with their spread."""

import statistics
import time

import numpy as np
import pytest

import fer_utils as fu


def test_spread_is_the_median_and_the_quartiles_of_the_timings():
    ms = np.random.default_rng(0).gamma(2.0, 1.5, size=101)
    result = fu.bench_inference.spread(ms)
    q1, median, q3 = statistics.quantiles(ms, n=4, method="inclusive")  # the standard library's quartiles
    assert result["median"] == pytest.approx(median) == pytest.approx(statistics.median(ms))
    assert result["quartiles"] == pytest.approx([q1, q3])


def test_timings_are_one_per_timed_call_after_the_warmup():
    calls = []
    ms = fu.bench_inference.timings_ms(lambda: calls.append(1), repeats=7, warmup=3)
    assert ms.shape == (7,) and len(calls) == 10 and (ms >= 0).all()
    slow = fu.bench_inference.median_ms(lambda: time.sleep(0.002), repeats=5, warmup=0)
    assert 2 <= slow < 200  # milliseconds, not seconds


def test_the_benchmark_record_names_the_cpu_it_ran_on():
    assert fu.runtime.cpu_model() != "" and fu.storage.environment()["cpu"] == fu.runtime.cpu_model()

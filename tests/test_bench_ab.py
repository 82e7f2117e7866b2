"""bench_ab's verdict says how sure it is: the rounds' paired differences and their spread."""

from tests.harness.bench_ab import Spread


def test_the_spread_is_the_rounds_paired_differences():
    spread = Spread([100.0, 200.0, 100.0, 100.0], [103.0, 206.0, 101.0, 105.0])
    assert [round(d, 4) for d in spread.differences] == [0.03, 0.03, 0.01, 0.05]
    assert round(spread.median, 4) == 0.03
    assert round(spread.deviation, 4) == 0.0163
    assert spread.rounds_to_resolve(0.03) == 2  # (2 * 0.0163 / 0.03) ** 2 = 1.2, rounded up


def test_a_noisy_run_asks_for_many_rounds():
    # +19% and +0.6%: the two runs an hour apart that made bench_ab report its spread.
    spread = Spread([100.0, 100.0], [119.0, 100.6])
    assert spread.rounds_to_resolve(0.03) == 76  # (2 * 0.130 / 0.03) ** 2 = 75.2
    assert str(spread).splitlines()[0].endswith("+19.0%, +0.6%")


def test_one_round_cannot_say_anything():
    assert Spread([100.0], [101.0]).rounds_to_resolve() == float("inf")

import pytest

from personpose.training.schedule import PATNSchedule


def test_patn_schedule_matches_reference_rule():
    s = PATNSchedule(steps_per_epoch=10, niter=3, niter_decay=4)
    # reference: 1 - max(0, epoch + 1 + epoch_count - niter) / (niter_decay + 1), epoch 0-based
    assert [s(k) for k in (0, 9, 10, 19)] == [1.0, 1.0, 1.0, 1.0]
    assert s(20) == pytest.approx(1 - 1 / 5)
    assert s(29) == pytest.approx(1 - 1 / 5)
    assert s(50) == pytest.approx(1 - 4 / 5)
    assert s(60) == 0.0 and s(1000) == 0.0


def test_patn_schedule_paper_setting_reaches_zero_in_epoch_700():
    s = PATNSchedule(steps_per_epoch=1, niter=500, niter_decay=200)
    assert s(497) == 1.0 and s(498) == 1.0
    assert s(499) == pytest.approx(1 - 1 / 201)
    assert s(699) == 0.0


def test_patn_schedule_rejects_bad_arguments():
    with pytest.raises(ValueError, match="steps_per_epoch"):
        PATNSchedule(0, 1, 1)
    with pytest.raises(ValueError, match="niter"):
        PATNSchedule(1, -1, 1)

"""Jobs run in a spawned child process: reports relayed, stop, errors and crashes."""

import pytest

from napari_nuclei.core.child_job import ChildJob, ChildJobFailed
from napari_nuclei.core.errors import InputError
from napari_nuclei.core.jobs import drain


def test_reports_and_result_come_back():
    job = ChildJob("jobs_for_child:count", {"n": 5}).start()
    reports = []
    assert drain(job.reports(), reports.append) == 10
    assert reports == [0, 1, 2, 3, 4]


def test_stop_ends_a_job_at_its_next_report():
    job = ChildJob("jobs_for_child:endless", {}).start()
    seen = []
    for report in job.reports():
        seen.append(report)
        if report == 3:
            job.stop()
    assert seen[:3] == [1, 2, 3]
    assert job.join(30)


def test_a_job_that_takes_stop_gets_the_event():
    job = ChildJob("jobs_for_child:count", {"n": 10**9}, pass_stop=True).start()
    reports = job.reports()
    next(reports)
    job.stop()
    assert drain(reports) == -1


def test_the_jobs_error_is_raised_here_as_it_was(tmp_path):
    job = ChildJob("jobs_for_child:bad_input", {"path": tmp_path / "x.png"},
                   log_path=tmp_path / "child.log").start()
    with pytest.raises(InputError, match="x.png: is not what this job wants"):
        drain(job.reports())
    assert "InputError" in (tmp_path / "child.log").read_text()


def test_a_dead_child_is_reported_with_its_last_log_lines(tmp_path):
    job = ChildJob("jobs_for_child:crash", {}, log_path=tmp_path / "child.log").start()
    with pytest.raises(ChildJobFailed, match="exit code 3.*last words before the crash"):
        drain(job.reports())


def test_a_job_may_start_processes_of_its_own():
    job = ChildJob("jobs_for_child:with_worker_process", {}).start()
    assert drain(job.reports()) == 49


def test_the_child_yields_the_processor_to_the_viewer():
    import os

    from napari_nuclei.core.child_job import CHILD_NICENESS

    job = ChildJob("jobs_for_child:niceness", {}).start()
    reports = []
    drain(job.reports(), reports.append)
    # Capped at 19: a parent already near the bottom cannot go lower.
    assert reports == [min(os.nice(0) + CHILD_NICENESS, 19)]

"""The session's one registry of running jobs and pending saves, as closing walks it."""

from napari_nuclei.session import Session
from napari_nuclei.session.jobs import SAVE, SLIDE, TRAINING, WRITE_BACK, Jobs


def test_closing_stops_what_can_stop_writes_what_is_due_and_is_idle_once_all_ended():
    jobs, said = Jobs(), []
    changes = []
    jobs.changed.connect(lambda: changes.append(len(jobs.running)))
    training = jobs.started(TRAINING, "run", stop=lambda: said.append("stop run"),
                            kill=lambda: said.append("kill run"))
    slide = jobs.started(SLIDE, "case_01", stop=lambda: said.append("stop slide"))
    write = jobs.started(WRITE_BACK, "case_01")  # let finish: it has no stop
    jobs.pending("window", lambda: said.append("flush window"),
                 lambda: said.append("write window now"))
    jobs.pending("window", lambda: said.append("flush window"), lambda: None)  # once
    assert [j.kind for j in jobs.running_of(TRAINING)] == [TRAINING] and not jobs.idle

    jobs.wind_down()
    assert said == ["flush window", "stop run", "stop slide"]
    assert not jobs.pending_saves and not jobs.idle
    assert jobs.kill_overdue() == [training] and said[-1] == "kill run"
    for job in (training, slide, write):
        jobs.ended(job)
    jobs.ended(training)  # ended twice: nothing more
    assert jobs.idle and changes[-1] == 0


def test_a_close_that_cannot_wait_writes_pending_saves_before_returning():
    jobs, said = Jobs(), []
    jobs.started(SAVE, "session")
    jobs.started(TRAINING, "run", stop=lambda: said.append("stop run"))
    jobs.pending("corrections", lambda: said.append("in a worker"),
                 lambda: said.append("written"))
    jobs.finish_now()
    assert said == ["stop run", "written"] and not jobs.pending_saves


def test_every_session_has_its_registry():
    assert Session().jobs is not Session().jobs and Session().jobs.idle

"""The command line's `jobs`, `queues` and `schedules` commands on a SQLite store (docs/cli.md)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import trio
from _cli import cli, make_store

from supervisors.jobs import ContinueOn, JobClient, JobSettings, JobState, SQLiteStore, Success

pytestmark = pytest.mark.usefixtures("restore_logging")


def test_jobs_list_prints_a_table_and_the_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`jobs list` prints one row per job, newest first, and the counts per state of the whole store."""
    db = tmp_path / "j.db"
    make_store(db, enqueued=2, dead=1)
    code, out, _ = cli(capsys, "jobs", "list", "--store", f"sqlite:///{db}")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "STATE", "QUEUE", "NAME", "ATTEMPT", "CREATED", "RUN", "AT", "LAST", "ERROR"]
    assert [line.split()[0] for line in lines[1:4]] == ["3", "2", "1"]
    assert lines[3].split()[:5] == ["1", "dead", "dead", "send", "1/20"]
    assert lines[3].endswith("ConnectionError: down")
    assert lines[-1] == "3 shown; in the store: 3 (2 enqueued, 1 dead)"


def test_jobs_list_filters_by_state_and_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`jobs list --state dead --json`: only dead jobs, as JSON with their errors."""
    db = tmp_path / "j.db"
    make_store(db, enqueued=2, dead=1)
    code, out, _ = cli(capsys, "jobs", "list", "--store", f"sqlite:///{db}", "--state", "DEAD", "--json")
    assert code == 0
    answer = json.loads(out)
    jobs = answer["items"]
    assert [(j["id"], j["state"], j["args"]) for j in jobs] == [(1, "dead", {"n": 0})]
    assert (answer["next"], answer["previous"]) == (None, None)
    assert jobs[0]["errors"][0]["error"] == "ConnectionError: down"


def test_jobs_show_prints_the_job_and_every_failed_attempt(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`jobs show ID`: fields, then each failed attempt with its traceback."""
    db = tmp_path / "j.db"
    make_store(db, dead=1)
    code, out, _ = cli(capsys, "jobs", "show", "1", "--store", f"sqlite:///{db}")
    assert code == 0
    assert out.splitlines()[0] == "job 1: send (dead)"
    assert '  args:        {"n": 0}' in out
    assert "attempt 1 failed at " in out
    assert "    Traceback: here" in out


def test_jobs_show_prints_the_result_and_the_continuations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`jobs show ID`: a succeeded job's result and the jobs that continue it; a continuation's
    parent; the same in ``--json``."""
    db = tmp_path / "j.db"
    with JobClient(db) as client:
        parent = client.enqueue("count")
        child = client.continue_with(parent, "publish", on=ContinueOn.ANY)

    async def succeed() -> None:
        store = SQLiteStore(db)
        now = time.time()
        (claimed,) = await store.claim("default", 1, owner="t", now=now, lease_until=now + 60)
        await store.settle(owner="t", now=now, succeeded=[Success(*claimed.token, '{"rows": 3}')])
        await store.aclose()

    trio.run(succeed)
    code, out, _ = cli(capsys, "jobs", "show", str(parent), "--store", f"sqlite:///{db}")
    assert code == 0
    assert '  result:      {"rows": 3}' in out
    assert f"  followed by: job {child}" in out
    code, out, _ = cli(capsys, "jobs", "show", str(child), "--store", f"sqlite:///{db}")
    assert out.splitlines()[0] == f"job {child}: publish (enqueued)"
    assert f"  continues:   job {parent} (on any)" in out
    code, out, _ = cli(capsys, "jobs", "show", str(parent), "--store", f"sqlite:///{db}", "--json")
    shown = json.loads(out)
    assert (shown["result"], shown["continuations"], shown["parent_id"]) == ({"rows": 3}, [child], None)


def test_jobs_show_of_an_unknown_id_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown job id: exit 1 and one line saying so."""
    db = tmp_path / "j.db"
    make_store(db, enqueued=1)
    code, _, err = cli(capsys, "jobs", "show", "99", "--store", f"sqlite:///{db}")
    assert code == 1
    assert err.strip() == (
        "supervisors: error: JobNotFoundError: no job with id 99 (it never existed or was pruned)"
    )


def test_jobs_commands_refuse_a_store_file_that_does_not_exist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A SQLite store URL naming no file is refused (never created by a read)."""
    missing = tmp_path / "nope.db"
    code, _, err = cli(capsys, "jobs", "list", "--store", f"sqlite:///{missing}")
    assert code == 1
    assert f"no job store at '{missing}'" in err
    assert not missing.exists()


def test_a_missing_store_file_named_by_a_relative_path_is_refused_with_the_absolute_form(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``sqlite:///tmp/x.db`` names ``tmp/x.db`` under the current directory: the refusal says
    so and shows the four-slash form of an absolute path."""
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "jobs", "list", "--store", "sqlite:///tmp/nope.db")
    assert code == 1
    assert "no job store at 'tmp/nope.db'" in err
    assert f"relative to '{tmp_path}'" in err
    assert "'sqlite:////tmp/nope.db'" in err
    assert not (tmp_path / "tmp").exists()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite://host/x.db", "postgresql://", "jobs.db"])
def test_jobs_commands_refuse_a_malformed_store_url(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed URL: one line with the accepted forms."""
    code, _, err = cli(capsys, "jobs", "list", "--store", url)
    assert code == 1
    assert "expected sqlite:///PATH (sqlite:////ABSOLUTE/PATH) or postgresql://" in err
    assert len(err.strip().splitlines()) == 1


def test_jobs_retry_enqueues_the_given_dead_jobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`jobs retry ID`: the dead job is enqueued again."""
    db = tmp_path / "j.db"
    make_store(db, dead=2)
    code, out, _ = cli(capsys, "jobs", "retry", "2", "--store", f"sqlite:///{db}")
    assert code == 0
    assert out.strip() == "job 2 enqueued again"
    with JobClient(db) as client:
        assert [client.get(1).state, client.get(2).state] == [JobState.DEAD, JobState.ENQUEUED]


def test_jobs_retry_all_dead_retries_every_dead_job_with_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`jobs retry --all-dead` over more than one page: every dead job enqueued, progress on stderr."""
    db = tmp_path / "j.db"
    make_store(db, dead=520, enqueued=1)
    code, out, err = cli(capsys, "jobs", "retry", "--all-dead", "--store", f"sqlite:///{db}")
    assert code == 0
    assert out.strip() == "520 dead job(s) enqueued again"
    assert "retried 100/520" in err
    assert "retried 500/520" in err
    with JobClient(db) as client:
        assert client.counts().by_state[JobState.DEAD] == 0
        assert client.counts().by_state[JobState.ENQUEUED] == 521


def test_jobs_retry_needs_ids_or_all_dead(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Neither ids nor --all-dead: refused in one line."""
    db = tmp_path / "j.db"
    make_store(db, enqueued=1)
    code, _, err = cli(capsys, "jobs", "retry", "--store", f"sqlite:///{db}")
    assert code == 1
    assert "give the ids of the jobs to retry, or --state STATE to retry every job in a state" in err


def test_jobs_enqueue_prints_the_new_id_and_stores_the_json_args(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`jobs enqueue NAME --args JSON --queue Q`: prints the id; the job has those args and queue."""
    db = tmp_path / "j.db"
    make_store(db, enqueued=1)
    code, out, _ = cli(capsys, "jobs", "enqueue", "send", "--args", '{"n": 7}', "--queue", "mail",
                       "--store", f"sqlite:///{db}")
    assert code == 0
    assert out.strip() == "2"
    with JobClient(db) as client:
        job = client.get(2)
    assert (job.name, job.args, job.queue, job.state) == ("send", {"n": 7}, "mail", JobState.ENQUEUED)


def _record(db: Path, *names: str) -> None:
    """Record job definitions in the store, as a host does when it starts."""

    async def define() -> None:
        store = SQLiteStore(db)
        await store.define([JobSettings(name=n, queue="default", max_attempts=3, unique=False) for n in names])
        await store.aclose()

    trio.run(define)


def test_jobs_enqueue_refuses_a_name_no_host_has_registered_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the hosts' job definitions recorded in the store, an unknown name is one line naming
    the registered ones and the closest (nothing enqueued); ``--force`` enqueues it anyway."""
    db = tmp_path / "j.db"
    make_store(db)
    _record(db, "send_mail", "nightly_report")
    code, _, err = cli(capsys, "jobs", "enqueue", "send_mial", "--store", f"sqlite:///{db}")
    assert code == 1
    assert err.strip() == (
        "supervisors: error: no host on this store has registered a job named 'send_mial' "
        "(registered: nightly_report, send_mail); did you mean 'send_mail'? pass --force to enqueue "
        "it anyway (e.g. before the hosts that have it are deployed)"
    )
    with JobClient(db) as client:
        assert client.counts().total == 0
    code, out, _ = cli(capsys, "jobs", "enqueue", "send_mial", "--force", "--store", f"sqlite:///{db}")
    assert (code, out.strip()) == (0, "1")
    code, out, err = cli(capsys, "jobs", "enqueue", "send_mail", "--store", f"sqlite:///{db}")
    assert (code, out.strip(), err) == (0, "2", "")


def test_jobs_enqueue_says_when_it_could_not_check_the_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a store where no host has recorded its jobs yet, the job is enqueued and a note on
    stderr says the name was not checked."""
    db = tmp_path / "j.db"
    make_store(db)
    code, out, err = cli(capsys, "jobs", "enqueue", "anything", "--store", f"sqlite:///{db}")
    assert (code, out.strip()) == (0, "1")
    assert err.strip() == "note: no host has recorded its jobs in this store yet, so 'anything' was not checked"


def test_jobs_enqueue_after_an_id_enqueues_a_continuation_that_awaits_that_job(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`jobs enqueue NAME --after ID --on any`: prints the id; the job awaits ID, as `continue_with` does."""
    db = tmp_path / "j.db"
    make_store(db, enqueued=1)
    code, out, _ = cli(capsys, "jobs", "enqueue", "report", "--after", "1", "--on", "any", "--store", f"sqlite:///{db}")
    assert code == 0
    assert out.strip() == "2"
    with JobClient(db) as client:
        job, parent = client.get(2), client.get(1)
    assert (job.name, job.state, job.parent_id, job.continue_on) == ("report", JobState.AWAITING, 1, ContinueOn.ANY)
    assert parent.continuations == (2,)


def test_jobs_enqueue_refuses_an_unknown_parent_and_on_without_after(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--after 99` (no such job) and `--on` alone: one line each; nothing enqueued."""
    db = tmp_path / "j.db"
    make_store(db, enqueued=1)
    code, _, err = cli(capsys, "jobs", "enqueue", "report", "--after", "99", "--store", f"sqlite:///{db}")
    assert code == 1
    assert "99" in err
    assert "Traceback" not in err
    code, _, err = cli(capsys, "jobs", "enqueue", "report", "--on", "failure", "--store", f"sqlite:///{db}")
    assert code == 1
    assert "--on needs --after ID" in err
    with JobClient(db) as client:
        assert client.counts().total == 1


def test_jobs_enqueue_refuses_args_that_are_not_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--args {bad`: one line saying the JSON is invalid; nothing enqueued."""
    db = tmp_path / "j.db"
    make_store(db, enqueued=1)
    code, _, err = cli(capsys, "jobs", "enqueue", "send", "--args", "{bad", "--store", f"sqlite:///{db}")
    assert code == 1
    assert "--args is not valid JSON" in err
    with JobClient(db) as client:
        assert client.counts().total == 1


@pytest.mark.parametrize("attempts", ["0", "-2", "many"])
def test_jobs_enqueue_refuses_a_max_attempts_below_one_as_a_usage_error(
    attempts: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--max-attempts 0`: a usage error (exit 2) naming the option; nothing enqueued."""
    db = tmp_path / "j.db"
    make_store(db, enqueued=1)
    with pytest.raises(SystemExit) as exit_info:
        cli(capsys, "jobs", "enqueue", "send", "--max-attempts", attempts, "--store", f"sqlite:///{db}")
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --max-attempts: expected a whole number >= 1 (got '{attempts}')" in err
    with JobClient(db) as client:
        assert client.counts().total == 1


def test_jobs_enqueue_takes_a_priority_and_a_concurrency_key_and_show_prints_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--priority`, `--concurrency-key` and `--concurrency-limit` are the job's settings, as
    from `JobClient.enqueue`; `jobs show` prints them."""
    db = tmp_path / "j.db"
    make_store(db, enqueued=1)
    url = f"sqlite:///{db}"
    code, out, _ = cli(capsys, "jobs", "enqueue", "send", "--priority", "-5", "--concurrency-key", "user:7",
                       "--concurrency-limit", "2", "--force", "--store", url)  # fmt: skip
    assert code == 0
    job_id = int(out)
    with JobClient(db) as client:
        job = client.get(job_id)
    assert (job.priority, job.concurrency_key, job.concurrency_limit) == (-5, "user:7", 2)
    code, out, _ = cli(capsys, "jobs", "show", str(job_id), "--store", url)
    assert code == 0
    assert "  priority:    -5\n" in out
    assert "  concurrency: key 'user:7', at most 2 running at once\n" in out
    code, out, _ = cli(capsys, "jobs", "show", "1", "--store", url)
    assert "  priority:    0\n" in out
    assert "concurrency:" not in out


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--priority", "high"], "argument --priority: expected a whole number such as 10 or -5 (got 'high')"),
        (
            ["--concurrency-limit", "0", "--concurrency-key", "k"],
            "argument --concurrency-limit: expected a whole number >= 1",
        ),
    ],
)
def test_jobs_enqueue_refuses_a_malformed_priority_or_limit_as_a_usage_error(
    options: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "j.db"
    make_store(db, enqueued=1)
    with pytest.raises(SystemExit) as exit_info:
        cli(capsys, "jobs", "enqueue", "send", *options, "--store", f"sqlite:///{db}")
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    with JobClient(db) as client:
        assert client.counts().total == 1


def test_jobs_enqueue_refuses_a_priority_out_of_range_or_a_limit_without_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line naming the setting (exit 1); nothing enqueued."""
    db = tmp_path / "j.db"
    make_store(db, enqueued=1)
    url = f"sqlite:///{db}"
    code, _, err = cli(capsys, "jobs", "enqueue", "send", "--priority", str(2**31), "--force", "--store", url)
    assert (code, err) == (
        1, "supervisors: error: 'priority' must be between -2147483648 and 2147483647 (got 2147483648)\n")  # fmt: skip
    code, _, err = cli(capsys, "jobs", "enqueue", "send", "--concurrency-limit", "3", "--force", "--store", url)
    assert (code, err) == (
        1, "supervisors: error: --concurrency-limit needs --concurrency-key KEY (the jobs it limits)\n")  # fmt: skip
    with JobClient(db) as client:
        assert client.counts().total == 1


def test_jobs_commands_report_an_unreachable_postgres_store_at_once_without_its_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Nothing listens at the URL: one line at once (no retrying as a host would), password masked."""
    code, _, err = cli(capsys, "jobs", "list", "--store", "postgresql://app:hunter2@127.0.0.1:9/jobs")
    assert code == 1
    assert err.startswith(
        "supervisors: error: cannot reach the PostgreSQL store at 'postgresql://app:***@127.0.0.1:9/jobs': "
    )
    assert "hunter2" not in err
    assert len(err.strip().splitlines()) == 1


def test_jobs_cancel_cancels_an_enqueued_job_and_refuses_a_finished_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`jobs cancel ID`: an enqueued job becomes cancelled; a dead one is refused in one line."""
    db = tmp_path / "j.db"
    make_store(db, dead=1, enqueued=1)
    code, out, _ = cli(capsys, "jobs", "cancel", "2", "--store", f"sqlite:///{db}")
    assert code == 0
    assert out.strip() == "job 2 cancelled"
    with JobClient(db) as client:
        assert client.get(2).state is JobState.CANCELLED
    code, _, err = cli(capsys, "jobs", "cancel", "1", "--store", f"sqlite:///{db}")
    assert code == 1
    assert err.startswith("supervisors: error: JobStateError: ")
    assert len(err.strip().splitlines()) == 1


def test_jobs_delete_by_state_deletes_every_job_in_it_with_progress(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`jobs delete --state dead`: every dead job deleted, progress on stderr, the others kept."""
    db = tmp_path / "j.db"
    make_store(db, dead=250, enqueued=2)
    code, out, err = cli(capsys, "jobs", "delete", "--state", "dead", "--store", f"sqlite:///{db}")
    assert code == 0
    assert out.strip() == "250 dead job(s) deleted"
    assert "deleted 200/250" in err
    with JobClient(db) as client:
        assert client.counts().total == 2


def test_jobs_requeue_enqueues_a_cancelled_job_again(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`jobs requeue ID` after `jobs cancel ID`: enqueued again."""
    db = tmp_path / "j.db"
    make_store(db, enqueued=1)
    assert cli(capsys, "jobs", "cancel", "1", "--store", f"sqlite:///{db}")[0] == 0
    code, out, _ = cli(capsys, "jobs", "requeue", "1", "--store", f"sqlite:///{db}")
    assert code == 0
    assert out.strip() == "job 1 enqueued again"
    with JobClient(db) as client:
        assert client.get(1).state is JobState.ENQUEUED


def test_schedules_trigger_pause_resume_a_recorded_schedule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`schedules trigger|pause|resume|paused NAME`; an unknown name is one line listing the recorded ones."""
    from supervisors.jobs import ScheduleSettings

    db = tmp_path / "j.db"
    make_store(db)

    async def record() -> None:
        store = SQLiteStore(db)
        await store.define_schedules([ScheduleSettings(name="nightly", job="cleanup", queue="default",
                                                       args="null", max_attempts=3)])
        await store.aclose()

    trio.run(record)
    url = f"sqlite:///{db}"
    code, out, _ = cli(capsys, "schedules", "trigger", "nightly", "--store", url)
    assert (code, out.strip()) == (0, "schedule 'nightly' triggered: job 1")
    with JobClient(db) as client:
        job = client.get(1)
    assert (job.name, job.schedule, job.state) == ("cleanup", "nightly", JobState.ENQUEUED)
    assert cli(capsys, "schedules", "pause", "nightly", "--store", url)[:2] == (0, "schedule 'nightly' paused\n")
    assert cli(capsys, "schedules", "paused", "--store", url)[:2] == (0, "nightly\n")
    assert cli(capsys, "schedules", "resume", "nightly", "--store", url)[:2] == (0, "schedule 'nightly' resumed\n")
    code, out, err = cli(capsys, "schedules", "paused", "--store", url)
    assert (code, out, err) == (0, "", "no schedule is paused\n")
    code, _, err = cli(capsys, "schedules", "trigger", "weekly", "--store", url)
    assert code == 1
    assert "no recurring schedule named 'weekly' is recorded in the store (recorded: 'nightly')" in err


def test_queues_pause_and_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`queues pause|resume|paused NAME`."""
    db = tmp_path / "j.db"
    make_store(db, enqueued=1)
    url = f"sqlite:///{db}"
    assert cli(capsys, "queues", "pause", "mail", "--store", url)[:2] == (0, "queue 'mail' paused\n")
    assert cli(capsys, "queues", "paused", "--store", url)[:2] == (0, "mail\n")
    assert cli(capsys, "queues", "resume", "mail", "--store", url)[:2] == (0, "queue 'mail' resumed\n")
    with JobClient(db) as client:
        assert client.paused_queues() == frozenset()


def test_queues_pause_and_resume_say_what_changed_and_name_a_close_queue_for_an_unknown_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Pausing a paused queue or resuming a running one says nothing changed; a queue that no
    job is in is paused all the same, with a note naming the closest queue that has jobs."""
    db = tmp_path / "j.db"
    make_store(db, enqueued=1)  # one job, in queue 'default'
    url = f"sqlite:///{db}"
    assert cli(capsys, "queues", "pause", "default", "--store", url) == (0, "queue 'default' paused\n", "")
    assert cli(capsys, "queues", "pause", "default", "--store", url) == (
        0, "queue 'default' was already paused\n", "")  # fmt: skip
    assert cli(capsys, "queues", "resume", "default", "--store", url) == (0, "queue 'default' resumed\n", "")
    code, out, err = cli(capsys, "queues", "resume", "default", "--store", url)
    assert (code, out, err) == (0, "queue 'default' was not paused; nothing changed\n", "")
    code, out, err = cli(capsys, "queues", "pause", "defualt", "--store", url)
    assert (code, out) == (0, "queue 'defualt' paused\n")
    assert err == (
        "note: no job of this store is in queue 'defualt' (queues with jobs, paused or rate-limited: "
        "'default'); "
        "did you mean 'default'?\n"
    )
    with JobClient(db) as client:
        assert client.paused_queues() == frozenset({"defualt"})


def test_queues_limit_sets_lists_and_removes_a_rate_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`queues limit NAME N --per S`, `queues limits [--json]`, `queues limit NAME --none`: the
    limit `JobClient.rate_limits` sees; a limit without its window, or neither, is refused."""
    from supervisors.jobs import RateLimit

    db = tmp_path / "j.db"
    make_store(db, enqueued=1)
    url = f"sqlite:///{db}"
    assert cli(capsys, "queues", "limits", "--store", url) == (0, "", "no queue is rate-limited\n")
    assert cli(capsys, "queues", "limit", "default", "100", "--per", "60", "--store", url) == (
        0, "queue 'default': at most 100 jobs started per 60 s, on every host\n", "")  # fmt: skip
    with JobClient(db) as client:
        assert client.rate_limits() == {"default": RateLimit(100, 60.0)}
    assert cli(capsys, "queues", "limits", "--store", url) == (0, "default  100 per 60 s\n", "")
    code, out, _ = cli(capsys, "queues", "limits", "--json", "--store", url)
    assert (code, json.loads(out)) == (0, {"default": {"limit": 100, "per_seconds": 60.0}})
    code, _, err = cli(capsys, "queues", "limit", "default", "5", "--store", url)
    assert (code, err) == (
        1, "supervisors: error: --per SECONDS is needed with a limit: 5 jobs per how many seconds?\n")  # fmt: skip
    code, _, err = cli(capsys, "queues", "limit", "default", "--store", url)
    assert code == 1
    assert "or --none to remove the limit" in err
    assert cli(capsys, "queues", "limit", "default", "--none", "--store", url) == (
        0, "queue 'default': no rate limit\n", "")  # fmt: skip
    assert cli(capsys, "queues", "limit", "default", "--none", "--store", url)[1] == (
        "queue 'default': no rate limit (it had none)\n")  # fmt: skip
    with JobClient(db) as client:
        assert client.rate_limits() == {}
    with pytest.raises(SystemExit) as exit_info:
        cli(capsys, "queues", "limit", "default", "5", "--per", "0", "--store", url)
    assert exit_info.value.code == 2
    assert "argument --per: expected a number of seconds > 0" in capsys.readouterr().err


def test_jobs_show_prints_each_attempts_progress_and_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`jobs show ID` prints the attempt's progress, its lines and the dropped count; --json too."""
    from supervisors.jobs import ProgressReport

    db = tmp_path / "j.db"
    make_store(db, enqueued=1)

    async def report() -> None:
        store = SQLiteStore(db)
        now = time.time()
        (job,) = await store.claim("default", 1, owner="t", now=now, lease_until=now + 60)
        lines = ((0, now, "copied a"), (1, now, "copied b"))
        await store.report([ProgressReport(job.id, 1, 1, 0.4, "copied 40 files", lines, 3)], owner="t", now=now)
        await store.aclose()

    trio.run(report)
    code, out, _ = cli(capsys, "jobs", "show", "1", "--store", f"sqlite:///{db}")
    assert code == 0
    assert "attempt 1 progress 40% copied 40 files" in out
    assert out.count("copied ") == 3
    assert "(3 more lines were dropped: over the cap of lines per attempt)" in out
    code, out, _ = cli(capsys, "jobs", "show", "1", "--json", "--store", f"sqlite:///{db}")
    (attempt,) = json.loads(out)["progress"]
    assert (attempt["fraction"], attempt["dropped"], attempt["lines"][1]["text"]) == (0.4, 3, "copied b")


def _recorded_schedule(db: Path) -> None:
    from supervisors.jobs import ScheduleSettings

    async def record() -> None:
        store = SQLiteStore(db)
        await store.define_schedules([ScheduleSettings(
            name="nightly", job="cleanup", queue="default", args="null", max_attempts=3,
            cron="30 2 * * *", tz="Europe/Paris", misfire="skip", overlap=False,
        )])  # fmt: skip
        t = time.time() - 3600
        await store.fire("nightly", expected=None, cursor=t, jobs=[], exclusive=False, now=t, owner="h",
                         notes={t - 60: "it came due while no scheduler was running; misfire policy skip"})
        await store.aclose()

    trio.run(record)


def test_schedules_list_prints_cron_zone_next_and_last_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`schedules list`: one row per recorded schedule with cron, zone, next/last run, paused, outcome."""
    db = tmp_path / "j.db"
    make_store(db)
    _recorded_schedule(db)
    url = f"sqlite:///{db}"
    assert cli(capsys, "schedules", "trigger", "nightly", "--store", url)[0] == 0
    code, out, _ = cli(capsys, "schedules", "list", "--store", url)
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["NAME", "CRON", "TZ", "NEXT", "RUN", "LAST", "RUN", "PAUSED", "LAST", "OUTCOME"]
    assert row.startswith("nightly  30 2 * * *  Europe/Paris  ")
    assert row.endswith("no      fired (last run: job 1, enqueued)")
    code, out, _ = cli(capsys, "schedules", "list", "--json", "--store", url)
    (info,) = json.loads(out)
    assert (info["name"], info["cron"], info["paused"]) == ("nightly", "30 2 * * *", False)
    assert info["last"]["outcome"] == "fired"
    assert info["next_run"] is not None


def test_schedules_show_prints_policies_and_the_fire_ledger(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`schedules show NAME`: the policies in words and the ledger newest first with reasons; --json."""
    db = tmp_path / "j.db"
    make_store(db)
    _recorded_schedule(db)
    url = f"sqlite:///{db}"
    cli(capsys, "schedules", "trigger", "nightly", "--store", url)
    code, out, _ = cli(capsys, "schedules", "show", "nightly", "--store", url)
    assert code == 0
    assert "overlap:   no overlap: an occurrence is skipped while a previous run is unfinished" in out
    assert "catch-up:  an occurrence is missed" in out
    assert "DST:       Europe/Paris: cron rules" in out
    ledger = out.split("fire ledger, newest first (2 shown):\n")[1].splitlines()
    assert "fired" in ledger[1]
    assert "triggered by hand" in ledger[1]
    assert "missed" in ledger[2]
    assert "no scheduler was running" in ledger[2]
    code, out, _ = cli(capsys, "schedules", "show", "nightly", "--json", "--limit", "1", "--store", url)
    data = json.loads(out)
    assert [e["outcome"] for e in data["ledger"]] == ["fired"]
    assert data["schedule"]["dst_policy"].startswith("Europe/Paris")
    code, _, err = cli(capsys, "schedules", "show", "weekly", "--store", url)
    assert code == 1
    assert "no recurring schedule named 'weekly'" in err

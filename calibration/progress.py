"""What the tenant's calibrate page shows of its jobs: the rows of its jobs table and the
sentence of its status region (``aria-live``), the same in the page as first served and in
the JSON its script polls (static/calibration/jobs.js), so the script only copies text."""

from typing import Any

from calibration.jobs import JobState

PENDING = ("queued", "running")
# How often the page's script asks for the jobs while one is pending: a job writes its
# progress once a second (calibration.jobs.PROGRESS_EVERY_S); every 3 s keeps the table within
# 3 s of it at a third of the requests (each reads the 5 jobs shown and their tasks' rows).
POLL_EVERY_S = 3


def pending(jobs: list[JobState]) -> bool:
    return any(job.state in PENDING for job in jobs)


def cells(job: JobState) -> list[str]:
    """The row's cells as the table shows them: job, queued, by, state, progress or result."""
    return [
        f"#{job.job.pk}",
        f"{job.job.created_at:%Y-%m-%d %H:%M:%S} UTC",
        job.job.created_by,
        job.state,
        job.text,
    ]


def summary(jobs: list[JobState]) -> str:
    """The status region's sentence: the newest job's state, with its result once it ends,
    and how many others are pending. No progress count: the region is read out each time its
    text changes, and the count moves every second (it is in the table)."""
    if not jobs:
        return ""
    newest, others = jobs[0], sum(job.state in PENDING for job in jobs[1:])
    said = f"Job #{newest.job.pk} {newest.state}."
    if newest.state not in PENDING:
        said = f"Job #{newest.job.pk} {newest.state}: {newest.text}"
    if others:
        said += f" {others} earlier {'job is' if others == 1 else 'jobs are'} still pending."
    return said


def jobs_json(jobs: list[JobState], threshold: float) -> dict[str, Any]:
    """The poll's answer: whether to ask again, the region's sentence, each row (its id, state
    and cells) and the tenant's threshold (a finished job may have changed it)."""
    return {
        "pending": pending(jobs),
        "summary": summary(jobs),
        "jobs": [
            {"id": f"calibration-job-{job.job.pk}", "state": job.state, "cells": cells(job)}
            for job in jobs
        ],
        "threshold": f"{threshold:.4f}",
    }

"""Which images a rebuild queues: missing ones, once, and lost jobs again."""

from photosearch_search.coverage import ImageState
from photosearch_search.domain import ImageRef
from photosearch_search.rebuild import JOB_GRACE_SECONDS, plan_batch


def state(image_id: str, **kwargs: object) -> ImageState:
    values: dict[str, object] = {
        "embedded": False,
        "failed": False,
        "deleted": False,
        "queued_age": None,
    }
    values.update(kwargs)
    return ImageState(image_id, **values)  # type: ignore[arg-type]


REFS = [ImageRef(f"img-{n}", "item") for n in range(6)]
STATES = {
    "img-0": state("img-0"),
    "img-1": state("img-1", embedded=True),
    "img-2": state("img-2", failed=True),
    "img-3": state("img-3", deleted=True),
    "img-4": state("img-4", queued_age=JOB_GRACE_SECONDS + 600),  # long ago
    "img-5": state("img-5", queued_age=1.0),  # just now
}


def ids(refs: list[ImageRef]) -> list[str]:
    return [r.image_id for r in refs]


def test_only_missing_images_without_a_waiting_job_are_queued() -> None:
    todo, waiting = plan_batch(REFS, STATES, retry_failed=False, queue_busy=True)
    assert ids(todo) == ["img-0"]
    assert waiting == 2


def test_with_an_empty_queue_old_unanswered_jobs_were_lost_and_are_queued_again() -> None:
    todo, waiting = plan_batch(REFS, STATES, retry_failed=False, queue_busy=False)
    assert ids(todo) == ["img-0", "img-4"]
    assert waiting == 1  # img-5's answer may still be on its way


def test_retry_failed_queues_failures_too() -> None:
    todo, _ = plan_batch(REFS, STATES, retry_failed=True, queue_busy=True)
    assert ids(todo) == ["img-0", "img-2"]

"""Server plugins' after_event hook runs as a job, off the send path: once per committed
event of the kinds it asks for, retried with backoff when it fails, then a dead letter
with its last error; a failing hook never touches the send (services/plugins.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests import plugin_samples
from tests.fakes import FakeClock
from tidings.app.container import Container
from tidings.core.jobs import JobState
from tidings.core.models import ConversationKind, OrgRole

PASSWORD = "plum-orbit-123-plugins"


@pytest.fixture(scope="module", autouse=True)
def installed_samples(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    yield from plugin_samples.install(tmp_path_factory.mktemp("site"))


@pytest.fixture(autouse=True)
def fresh_samples() -> None:
    plugin_samples.Events.seen.clear()
    plugin_samples.Events.attempts.clear()


@pytest.fixture
def container_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def container_settings(request: pytest.FixtureRequest) -> dict[str, object]:
    fail_times = getattr(request, "param", 0)
    return {
        "plugins": ["t-events"],
        "plugin_settings": {"t-events": {"fail_times": fail_times}},
        "plugin_job_max_attempts": 3,
        "jobs_backoff_base_seconds": 10,
        "jobs_backoff_max_seconds": 100,
    }


async def test_after_event_runs_once_per_event_as_a_job(container: Container) -> None:
    svc = container.services
    boss = await svc.users.create(None, "boss", PASSWORD, role=OrgRole.ADMIN)
    await svc.jobs.drain()  # the consumer's first sight: it starts at the head
    conv, _ = await svc.conversations.create(boss, ConversationKind.GROUP, [], "g")
    message, _ = await svc.messages.send(boss, conv.id, "c1", "hello plugins")
    await svc.messages.mark_read(boss, conv.id, 1)  # not a kind it asked for
    assert plugin_samples.Events.seen == []  # nothing ran on the send path
    await svc.jobs.drain()
    await svc.jobs.drain()  # a second drain finds nothing new: once per event
    (seen,) = plugin_samples.Events.seen
    assert seen.kind == "message" and seen.conversation_id == conv.id
    assert seen.data["message"]["body"] == "hello plugins"  # type: ignore[index]
    jobs = await svc.jobs.list(boss, kind="plugin:t-events")
    assert [(j.id, j.state, j.payload) for j in jobs] == [
        (f"plugin:t-events:{seen.position}", JobState.DONE,
         {"position": int(seen.position), "kind": "message"})
    ]  # the position, not the message: no body in the outbox
    listed = svc.plugins.enabled(boss)
    assert listed[0]["hooks"] == ["after_event"]
    assert listed[0]["after_event"] == {"runs": 1, "failures": 0}
    assert message.seq == 1


@pytest.mark.parametrize("container_settings", [99], indirect=True)
async def test_a_failing_after_event_is_retried_then_dead_lettered(
    container: Container, container_clock: FakeClock
) -> None:
    svc = container.services
    boss = await svc.users.create(None, "boss", PASSWORD, role=OrgRole.ADMIN)
    await svc.jobs.drain()
    conv, _ = await svc.conversations.create(boss, ConversationKind.GROUP, [], "g")
    message, created = await svc.messages.send(boss, conv.id, "c1", "hello")
    assert created and message.seq == 1  # the send is untouched by the hook's failures
    for _ in range(3):
        await svc.jobs.drain()
        container_clock.advance(100)
    (dead,) = await svc.jobs.list(boss, states=[JobState.DEAD])
    assert dead.kind == "plugin:t-events" and dead.attempts == 3
    assert dead.last_error == "RuntimeError: after_event failed on attempt 3"
    assert list(plugin_samples.Events.attempts.values()) == [3]
    assert plugin_samples.Events.seen == []
    assert svc.plugins.enabled(boss)[0]["after_event"] == {"runs": 0, "failures": 3}
    # fixed (here: it stops failing), an admin retries the dead letter: it runs
    plugin_samples.Events.attempts.clear()
    await svc.jobs.retry(boss, dead.id)
    container_clock.advance(1)
    # fail_times is 99: it fails again, once per attempt, but still never the send
    await svc.jobs.drain()
    assert (await svc.jobs.show(boss, dead.id)).attempts == 1


@pytest.mark.parametrize("container_settings", [1], indirect=True)
async def test_an_after_event_that_fails_once_succeeds_on_the_retry(
    container: Container, container_clock: FakeClock
) -> None:
    svc = container.services
    boss = await svc.users.create(None, "boss", PASSWORD, role=OrgRole.ADMIN)
    await svc.jobs.drain()
    conv, _ = await svc.conversations.create(boss, ConversationKind.GROUP, [], "g")
    await svc.messages.send(boss, conv.id, "c1", "hello")
    await svc.jobs.drain()
    assert plugin_samples.Events.seen == []
    container_clock.advance(100)
    await svc.jobs.drain()
    assert len(plugin_samples.Events.seen) == 1
    (job,) = await svc.jobs.list(boss, kind="plugin:t-events")
    assert job.state is JobState.DONE and job.attempts == 2

"""What napari told the user: every notification shown during a test, as one line each."""

import pytest


@pytest.fixture
def notifications():
    """The messages of the notifications napari shows (info, warnings, errors), in order."""
    from napari.utils.notifications import notification_manager

    seen = []

    def record(event):
        seen.append(" ".join(str(event.message).split()))

    notification_manager.notification_ready.connect(record)
    yield seen
    notification_manager.notification_ready.disconnect(record)

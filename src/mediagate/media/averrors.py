"""Why an audio/video task failed, as a status code and a reason a person can read.

These are task outcomes, not HTTP answers: the task queue stores ``reason`` and sends ``status``
as the callback's ``status_code`` (UPYUN ``naga`` codes, shared/specs/upyun-apps.md §3.6); a
dialect that validates at submit time may turn a :class:`BadMediaOptions` into its own 400.
The reason never holds a server path (the runner rewrites them to ``input``/``output``).

    MediaTaskError
    ├── BadMediaOptions (400)   avopts / preset / template text we cannot accept
    ├── NotMedia (415)          the source is not a readable audio/video file
    ├── TranscodeFailed (500)   ffmpeg ran and failed
    └── TranscodeTimeout (504)  ffmpeg ran past the task's time budget and was killed
"""

from __future__ import annotations


class MediaTaskError(Exception):
    status: int = 500

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.reason!r})"


class BadMediaOptions(MediaTaskError):
    status = 400


class NotMedia(MediaTaskError):
    status = 415


class TranscodeFailed(MediaTaskError):
    status = 500


class TranscodeTimeout(MediaTaskError):
    status = 504


class FfmpegUnavailable(MediaTaskError):
    """No ffmpeg on this machine: the optional ``video`` extra (a GPL build) is not installed."""

    status = 503

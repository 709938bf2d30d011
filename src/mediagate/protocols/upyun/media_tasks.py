"""The UPYUN media task kinds of this module's siblings, registered in one place (``naga``,
``imgaudit``, ``videoaudit``, ``textjudge``); ``apps.register`` keeps ``thumb`` and the callback
shape of every UPYUN task."""

from __future__ import annotations

from mediagate.tasks.registry import Registry


def register(registry: Registry) -> None:
    from mediagate.protocols.upyun import imgaudit, naga, textjudge, videoaudit

    registry.register(naga.KIND, naga.run_naga)
    registry.register(imgaudit.KIND, imgaudit.run_imgaudit)
    registry.register(textjudge.KIND, textjudge.run_textjudge)
    registry.register(videoaudit.KIND, videoaudit.run_videoaudit)

"""Steps applied to an event's JSON before validation, per topic, by every entry point that
takes agencies' JSON (gateway, Open311, file uploads, SDK).

Today there is one: the citizen-feedback subsystem's removal of personal data
(``ioc.connectors.privacy.pre_send_transforms``: reporter name and phone → keyed pseudonym,
phone-like digits masked), used when that subsystem is installed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ioc.infra.settings import Settings

Transform = Callable[[dict[str, Any]], dict[str, Any]]


def default_transforms(settings: Settings) -> Mapping[str, Transform]:
    try:
        from ioc.connectors.privacy import (  # type: ignore[import-not-found,unused-ignore]
            pre_send_transforms,
        )
    except ImportError:
        return {}
    transforms: Mapping[str, Transform] = pre_send_transforms(settings)
    return transforms

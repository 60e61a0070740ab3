"""The Jinja2 environment for pages: NHS.UK frontend macros plus Django's static and url."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.messages import get_messages
from django.templatetags.static import static
from django.urls import reverse
from jinja2 import ChainableUndefined, ChoiceLoader, Environment, PackageLoader


def url(name: str, *args: Any, **kwargs: Any) -> str:
    return reverse(name, args=args or None, kwargs=kwargs or None)


def environment(**options: Any) -> Environment:
    # NHS.UK frontend macros expect ChainableUndefined (chained optional parameters).
    options["undefined"] = ChainableUndefined
    options["autoescape"] = True
    app_loader = options.pop("loader", None)
    loaders = [app_loader] if app_loader else []
    loaders.append(PackageLoader("nhsuk_frontend_jinja"))
    env = Environment(loader=ChoiceLoader(loaders), **options)  # noqa: S701 (autoescape set)
    env.globals.update(
        {
            "static": static,
            "url": url,
            "get_messages": get_messages,
            "idle_seconds": settings.SESSION_COOKIE_AGE,
        }
    )
    return env

"""The Jinja2 environment for pages: NHS.UK frontend macros plus Django's static and url."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.messages import get_messages
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.templatetags.static import static
from django.urls import get_script_prefix, get_urlconf, reverse
from jinja2 import ChainableUndefined, ChoiceLoader, Environment, PackageLoader
from markupsafe import Markup

# Where a kept fragment has the request's CSRF token: filled in on every render
CSRF_SLOT = "hs-csrf-token-slot-4f1c"
_FRAGMENTS: dict[tuple, Markup] = {}
_MOST_FRAGMENTS = 256


# url() of a name without arguments, kept: such names are literals of the templates (a
# bounded set), and a reverse() costs about 20 microseconds, inside loops 50 times a page
# (docs/performance.md). Keyed by the URL prefix and the request's urlconf.
_PLAIN_URLS: dict[tuple[str, Any, str], str] = {}
_MOST_PLAIN_URLS = 1024


def url(name: str, *args: Any, **kwargs: Any) -> str:
    if args or kwargs:
        return reverse(name, args=args or None, kwargs=kwargs or None)
    key = (get_script_prefix(), get_urlconf(), name)
    found = _PLAIN_URLS.get(key)
    if found is None:
        found = reverse(name)
        if len(_PLAIN_URLS) < _MOST_PLAIN_URLS:
            _PLAIN_URLS[key] = found
    return found


@receiver(setting_changed)
def _forget_urls(*, setting: str, **kwargs: Any) -> None:
    if setting == "ROOT_URLCONF":  # tests that swap the URLs: Django forgets its own too
        _PLAIN_URLS.clear()


def once(*key: Any, caller: Any) -> Markup:
    """``{% call once(name, ...) %}...{% endcall %}``: the body rendered once for each key
    and kept, as the NHS.UK header and footer macros cost as much CPU as the rest of a page
    (docs/performance.md). The key must name everything the body depends on; the body must
    hold nothing secret or per-request (the CSRF token goes in as ``CSRF_SLOT``, see
    ``with_csrf``); the deployment's URL prefix is part of every key."""
    full = (get_script_prefix(), *key)
    html = _FRAGMENTS.get(full)
    if html is None:
        html = caller()  # a call block's body: already Markup, escaped as it rendered
        if len(_FRAGMENTS) < _MOST_FRAGMENTS:  # a bounded set of variants, never unbounded
            _FRAGMENTS[full] = html
    return html


def with_csrf(html: Markup, token: Any) -> Markup:
    """A kept fragment with this request's CSRF token in its slot (Markup's replace
    escapes the token)."""
    if not isinstance(html, Markup):
        raise TypeError("with_csrf fills a rendered fragment, not text")
    return html.replace(CSRF_SLOT, str(token))


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
            "once": once,
            "with_csrf": with_csrf,
            "CSRF_SLOT": CSRF_SLOT,
        }
    )
    return env

"""The home page's webhook form (issue 13): subscribe a Discord, Slack or JSON webhook.

The same rules as the API (app.subscriptions.service): the URL is checked first, a
verification message with the confirm link is posted to it, and a `json` webhook's
signing secret is shown once, on the answer page.
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from app.api.deps import ChannelsDep, PlatformsDep, SessionDep, SettingsDep
from app.api.pages.site import CheckedForm, _page, _text, form_events, form_filters
from app.api.ratelimit import rate_limit
from app.errors import NotFound, Unprocessable
from app.models import WEBHOOK_FORMATS
from app.schemas import USERNAME_HINT, USERNAME_PATTERN
from app.subscriptions import recipients
from app.subscriptions import service as subscriptions
from app.urls import SUBSCRIBE_WEBHOOK_PATH

router = APIRouter(include_in_schema=False, dependencies=[Depends(rate_limit)])


@router.post(SUBSCRIBE_WEBHOOK_PATH, response_class=HTMLResponse)
async def subscribe_webhook(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    platforms: PlatformsDep,
    channels: ChannelsDep,
    form: CheckedForm,
) -> HTMLResponse:
    username = _text(form, "username", 40)
    url, fmt = _text(form, "webhook_url", 2000), _text(form, "webhook_format", 16)
    filters, events = form_filters(form), form_events(form)
    values: dict[str, object] = {
        "hook_username": username,
        "webhook_url": url,
        "webhook_format": fmt,
        # The boxes as they were ticked (none ticked is shown as an error beside them).
        "hook_filters": filters or {"time_classes": [], "rated_only": bool(form.get("rated_only"))},
        "hook_events": events,
    }
    errors: dict[str, str] = {}
    if filters is None:
        errors["hook_filters"] = "Choose at least one kind of game."
    if events == []:
        errors["hook_events"] = "Choose at least one kind of alert."
    if not re.fullmatch(USERNAME_PATTERN, username):
        errors["hook_username"] = USERNAME_HINT
    if fmt not in WEBHOOK_FORMATS:
        errors["webhook_format"] = "Choose Discord, Slack, ntfy or JSON."
    if not url:
        errors["webhook_url"] = "Enter the webhook's https:// URL."
    if errors:
        return _page(request, settings, "home.html", 422, values=values, errors=errors)
    try:
        given = {"url": url, "format": fmt}
        recipient = await recipients.recipient(channels["webhook"], given)
        done = await subscriptions.subscribe(
            session,
            settings,
            platforms,
            recipient=recipient,
            username=username,
            choice=subscriptions.Choice(filters=filters, events=events),
        )
    except Unprocessable as exc:
        errors["webhook_url"] = str(exc.detail)
        return _page(request, settings, "home.html", 422, values=values, errors=errors)
    except NotFound:
        errors["hook_username"] = f"Chess.com has no player named “{username}”."
        return _page(request, settings, "home.html", 404, values=values, errors=errors)
    return _page(
        request,
        settings,
        "webhook_subscribed.html",
        username=username.lower(),
        status=done.status,
        secret=done.secret,
    )

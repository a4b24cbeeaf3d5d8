"""The HTTP API: the only package that knows FastAPI and Starlette.

Routers (`routers/`), pages (`pages/`), request dependencies (`deps`), HTTP error
handlers (`errors`), OpenAPI helpers (`openapi`, `webhook_docs`), rate limiting and the
ops endpoints. They parse, call a domain service and answer; the rules live in the
domain packages (`app.players`, `app.subscriptions`, ...), which import no web framework.
"""

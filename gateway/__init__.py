"""The HTTP gateway (`byok-ledger serve`): the routing core behind OpenAI- and
Anthropic-compatible HTTP, so any application uses it through the SDK it already has.

`gateway.app.create_app(config)` builds the ASGI app; `gateway.serve.serve(...)` runs it
on uvicorn with N worker processes.
"""

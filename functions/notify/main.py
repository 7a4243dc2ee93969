"""HTTP entry point of the notify agent (functions-framework target ``handle``)."""

import flask
import functions_framework

from functions.notify.agent import NotifyAgent
from shared.runtime import serve

runtime = serve(NotifyAgent())


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    return runtime(request)

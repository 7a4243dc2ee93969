"""HTTP entry point of the theme agent (functions-framework target ``handle``)."""

import flask
import functions_framework

from functions.theme.agent import ThemeAgent
from shared.runtime import serve

runtime = serve(ThemeAgent())


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    return runtime(request)

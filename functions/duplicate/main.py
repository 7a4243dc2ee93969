"""HTTP entry point of the duplicate agent (functions-framework target ``handle``)."""

import flask
import functions_framework

from functions.duplicate.agent import DuplicateAgent
from shared.runtime import serve

runtime = serve(DuplicateAgent())


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    return runtime(request)

"""HTTP entry point of the priority agent (functions-framework target ``handle``)."""

import flask
import functions_framework

from functions.priority.agent import PriorityAgent
from shared.runtime import serve

runtime = serve(PriorityAgent())


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    return runtime(request)

"""HTTP entry point of the competitive agent (functions-framework target ``handle``)."""

import flask
import functions_framework

from functions.competitive.agent import CompetitiveAgent
from shared.runtime import serve

runtime = serve(CompetitiveAgent())


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    return runtime(request)

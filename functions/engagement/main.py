"""HTTP entry point of the engagement agent (functions-framework target ``handle``)."""

import flask
import functions_framework

from functions.engagement.agent import EngagementAgent
from shared.runtime import serve

runtime = serve(EngagementAgent())


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    return runtime(request)

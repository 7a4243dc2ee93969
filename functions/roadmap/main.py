"""HTTP entry point of the roadmap agent (functions-framework target ``handle``)."""

import flask
import functions_framework

from functions.roadmap.agent import RoadmapAgent
from shared.runtime import serve

runtime = serve(RoadmapAgent())


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    return runtime(request)

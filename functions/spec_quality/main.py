"""HTTP entry point of the spec_quality agent (functions-framework target ``handle``)."""

import flask
import functions_framework

from functions.spec_quality.agent import SpecQualityAgent
from shared.runtime import serve

runtime = serve(SpecQualityAgent())


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    return runtime(request)

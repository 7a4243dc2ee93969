"""HTTP entry point of the spec_writer agent (functions-framework target ``handle``)."""

import flask
import functions_framework

from functions.spec_writer.agent import SpecWriterAgent
from shared.runtime import serve

runtime = serve(SpecWriterAgent())


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    return runtime(request)

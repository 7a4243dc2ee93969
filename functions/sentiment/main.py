"""HTTP entry point of the sentiment agent (functions-framework target ``handle``)."""

import flask
import functions_framework

from functions.sentiment.agent import SentimentAgent
from shared.runtime import serve

runtime = serve(SentimentAgent())


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    return runtime(request)

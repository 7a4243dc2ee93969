"""HTTP entry point of Slack's interaction callbacks (functions-framework target ``handle``)."""

import flask
import functions_framework

from functions.slack_actions.actions import serve_actions

actions = serve_actions()


@functions_framework.http
def handle(request: flask.Request) -> flask.Response:
    return actions(request)

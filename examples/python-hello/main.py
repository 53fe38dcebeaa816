"""Example platform service: answers under CONTEXT_ROOT on PORT."""

import os
import signal
import sys

import click
import flask

CONTEXT_ROOT = os.environ.get("CONTEXT_ROOT", "/").rstrip("/")
PORT = int(os.environ.get("PORT", "8080"))

app = flask.Flask(__name__)


@app.get(CONTEXT_ROOT + "/")
def hello():
    return {
        "service": "python-hello",
        "click_from": click.__file__,
        "flask_from": flask.__file__,
    }


@app.get(CONTEXT_ROOT + "/healthz")
def healthz():
    return {"ok": True}


if __name__ == "__main__":
    # PID 1 in a container gets no default SIGTERM handling: exit cleanly on stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app.run(host="0.0.0.0", port=PORT)

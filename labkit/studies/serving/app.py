"""The HTTP service of the serving study: FastAPI, one model per uvicorn worker process.

Run by :class:`~labkit.studies.serving.servers.HttpServer` as ``uvicorn --factory
labkit.studies.serving.app:create_app``; the model's pickle is at the path in
``LABKIT_SERVING_MODEL``. The query's handler is ``async`` and calls the model inline: a
worker answers one query at a time and takes no other meanwhile, as one replica.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

from .models import one_thread
from .servers import MODEL_ENV


def create_app() -> Any:
    """The FastAPI app: ``GET /health`` (this worker's pid) and ``GET /q/{index}`` (one query)."""
    from fastapi import FastAPI

    one_thread()
    with open(os.environ[MODEL_ENV], "rb") as f:
        model = pickle.load(f)
    model.serve(0)
    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, int]:
        return {"pid": os.getpid()}

    @app.get("/q/{index}")
    async def query(index: int) -> dict[str, Any]:
        label, took = model.serve(index)
        return {"label": label, "service_s": took}

    return app

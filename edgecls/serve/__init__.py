"""``edgecls serve``: a local HTTP service for camera apps (the DeepStack scene API), with metrics and
model reloads without downtime. Needs one runtime extra and the ``serve`` extra (Starlette, uvicorn,
prometheus-client, python-multipart); never TensorFlow.

    from edgecls.serve import ModelSet, ServeOptions, create_app
    app = create_app(ModelSet([("digits", Path("model_int8.tflite"))], workers=2, threads=1))
"""

from edgecls.serve.app import HTTPError, ServeOptions, create_app
from edgecls.serve.models import ModelSet, parse_model_args

__all__ = ["create_app", "ServeOptions", "ModelSet", "parse_model_args", "HTTPError"]

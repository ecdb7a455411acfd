"""`nar serve`: generation, decoding and 2x super-resolution as HTTP services (FastAPI), with
request batching, a bounded queue, and a web page for interactive refinement at ``/``."""
from nar.serve.app import ServeConfig, create_app
from nar.serve.engine import Limits

__all__ = ["ServeConfig", "create_app", "Limits"]

"""The lab's serving target: any engine behind the OpenAI speech endpoint, N replicas, a bounded queue.

``protocol`` parses and frames (pure), ``timeline`` keeps each request's server-side timeline,
``workers`` runs the engine replicas, ``app`` is the FastAPI application, ``server`` runs it.
"""

"""Logger, Tracer and Metrics, created once and shared by every function.

Service name, log level and metrics namespace come from the Powertools
environment variables set in template.yaml's Globals. Property values and
secrets are never logged: handlers log ids, counts and outcomes only.
"""

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
tracer = Tracer()
metrics = Metrics()

"""Developer tooling that is never deployed: reading template.yaml to create
local resources (tests, and the Docker-free local stack)."""

import os

# Powertools reads these when its Logger and Metrics are created, which is when
# propsync.observability is first imported: by the local stack's own imports
# (propsync.access imports it), before any of its code runs. Set here, in the
# package every local tool is imported through, they are in place by then, as
# template.yaml's Globals set them in Lambda; without the namespace, every
# route that records a metric answered 500 "Must contain a metric namespace".
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "propsync")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "propsync")
os.environ.setdefault("POWERTOOLS_DEV", "false")

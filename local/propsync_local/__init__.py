"""Developer tooling that is never deployed: reading template.yaml to create
local resources (tests, and the Docker-free local stack)."""

import os

# Powertools reads these when propsync.observability creates its Logger and
# Metrics, the first time any propsync module is imported: set them before
# that (the local stack imports propsync modules at its own import). Without a
# namespace every handler that adds a metric fails as it returns
# (SchemaValidationError), answering 502 on make run.
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "propsync")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "propsync")
os.environ.setdefault("POWERTOOLS_DEV", "false")

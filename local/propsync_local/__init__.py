"""Developer tooling that is never deployed: reading template.yaml to create
local resources (tests, and the Docker-free local stack)."""

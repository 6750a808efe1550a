"""Local emulators of the APIs the operator talks to: Fastly's secret store API and (for tests and the demo)
the Kubernetes API. They bind to 127.0.0.1 and keep everything in memory."""

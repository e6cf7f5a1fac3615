"""nomadgen: resolve a manifest of services into Nomad jobs and publish their interfaces in Consul.

Kept import-free so `nomadgen render` loads only what it uses."""

__version__ = "0.1.0"

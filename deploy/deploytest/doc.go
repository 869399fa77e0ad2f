// Package deploytest checks the deployment files in deploy/ for real: it
// builds deploy/Dockerfile with buildah and runs the image with podman
// (health check, an order through the gateway, orphans reaped, a graceful
// stop with a request in flight), loads deploy/compose.yaml with the
// compose specification's own library, and decodes deploy/k8s strictly into
// Kubernetes' API types, checking what refers to what in each.
//
// It holds tests only. Without buildah and podman the image test skips,
// unless HERD_REQUIRE_SERVICES=1, where it fails.
package deploytest

// Package deploy holds what runs Consentry's collector in production,
// and the tests that check it: a hardened systemd unit (systemd/), a
// container image built with buildah (container/), and a Helm chart for
// Kubernetes (helm/consentry). See README.md.
//
// It is a Go module of its own, so that the Helm and Kubernetes modules
// its tests use stay out of the collector's dependencies; it uses the
// collector's module (replace ../) for its test helpers. Its tests build
// consentryd from the repository and check every configuration these
// files give it with consentryd --check-config: the flags and variables
// they name, the secrets' files and their modes.
package deploy

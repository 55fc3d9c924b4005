//go:build !mesh_nometrics

package cluster

// metricsOn is false only in a build with the mesh_nometrics tag, which
// compiles the per-request metrics out so a benchmark can measure what they
// cost (make bench, step metrics). Nothing else should set the tag.
const metricsOn = true

// Package kube is the Kubernetes executor: each stage attempt becomes one pod in its
// team's namespace (created with a ResourceQuota on first use), all steps in one
// container, run in order by the stage's shell, so they share the workspace and the
// stage pays for one pod start, not one per step.
//
// The pod: an init container ("fetch") fills the workspace (an emptyDir at /workspace)
// with the run's source and the input artifacts from the paved server; the stage
// container runs the steps and prints a marker line around each, so that the executor,
// following the pod's log, reports steps and their output to the Observer as the local
// executor does. Secrets go
// into a Kubernetes Secret made for the attempt (owned by the pod, so the garbage
// collector removes it should paved not) and reach the steps through secretKeyRef; the
// executor deletes the pod and the Secret when the stage ends.
//
// Pods carry the labels paved.dev/run, paved.dev/stage and paved.dev/attempt. Run first
// looks for a pod with its job's labels and follows it instead of making another: after a
// restart of paved (Close detaches from pods without deleting them) the scheduler runs
// the attempt again and the executor re-attaches to the pod that kept running.
//
// The executor serves its pods itself (pods.go, mounted by the API at /api/v1/pod): the
// workspace the init container fetches, built on the server with the local executor's
// code (package workspace), and the reports and artifacts a collect container sends back
// once the steps end, matched against the stage's globs on the server. A token made for
// each attempt, kept in its Secret, opens these routes for that attempt only.
package kube

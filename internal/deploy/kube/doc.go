// Package kube is the Kubernetes deploy target: it runs a deployment's strategy against
// Deployments and a Service in one namespace of one cluster, chosen per environment by a
// kubeconfig context (or the in-cluster configuration), so one paved deploys to many
// clusters.
//
//   - rolling: one Deployment whose RollingUpdate strategy carries max_surge and
//     max_unavailable and whose progressDeadlineSeconds is readiness_timeout. When the
//     deployment controller reports ProgressDeadlineExceeded the target puts the pod
//     template of the previous ReplicaSet back (what `kubectl rollout undo` does) and waits
//     for that rollout.
//   - blue-green: two Deployments, NAME-blue and NAME-green; the new version rolls out in
//     the idle one (reachable through the NAME-preview Service), then the NAME Service's
//     selector switches to it in one update. When the analysis after the switch fails the
//     selector switches back. The old slot is scaled to 0 after keep_warm; the due time is
//     an annotation on its Deployment (AnnotScaleDownAt), so that Resume, after a restart
//     of paved, finishes it.
//   - canary: the stable Deployment NAME and a canary Deployment NAME-canary. Without an
//     HTTPRoute both are behind the one Service and the traffic is split by replica ratio;
//     with one (kubernetes.http_route), the canary has its own Service and each step sets
//     the route's backendRefs weights to the step's weight exactly (typed client of
//     sigs.k8s.io/gateway-api). Each step is judged by the deploy package's analysis with
//     the Prometheus source, the stable pods standing as the baseline; a failure sends all
//     traffic back to stable, deletes the canary and brings stable back to its replicas.
//
// Rollouts are followed with the watch API (client-go's UntilWithSync on the Deployment),
// never by polling.
package kube

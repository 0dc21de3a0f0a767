// Package gitops is the promotion target that does not deploy: it commits the new image
// digest to a configuration git repository that a cluster-side agent (Argo CD, Flux, a
// script) applies, and waits for the environment to say it runs it. One promotion is one
// commit, whose message names the freight; a promotion resumed after a crash finds its
// digest committed already and does not commit twice.
//
// Two file shapes are edited, as YAML nodes so that comments, key order and the rest of
// the file survive: a kustomization's images: list (the entry whose name is Image gets
// digest:; a newTag: beside it stays, kustomize ignores it once a digest is set), or a Helm
// values file at a dotted path (image.digest, or image.tag for charts that take the digest
// as their tag). When the key exists, only its value's bytes change; a key that is missing
// is added through the YAML tree and the file is written again from it.
//
// The health signal is an HTTP URL (ready when it answers 2xx; a JSON body's "digest" must
// then be the new one) or a status file the cluster side writes ({"digest": ..., "healthy":
// true}, JSON or YAML). The same signal tells what runs, so drift, a config repository whose
// digest differs from what the environment reports running, is found by comparing the two.
package gitops

package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/paved/paved/internal/cache"
	"github.com/paved/paved/internal/deploy"
	deploykube "github.com/paved/paved/internal/deploy/kube"
	kubeexec "github.com/paved/paved/internal/execute/kube"
)

// kubeOptions are the server's flags of the Kubernetes executor. Deploy targets name their
// cluster per environment (deploy: {target: kubernetes, kubernetes: {context, namespace}}).
type kubeOptions struct {
	kubeconfig      string
	context         string
	namespacePrefix string
	serverURL       string
	cacheClaim      string
	fetchImage      string
	defaultImage    string
}

func (k *kubeOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&k.kubeconfig, "kube-config", "", "kubeconfig of the executor's cluster (default $KUBECONFIG, else ~/.kube/config)")
	f.StringVar(&k.context, "kube-context", "", "kubeconfig context of the executor's cluster, or in-cluster (default: the current context)")
	f.StringVar(&k.namespacePrefix, "kube-namespace-prefix", "paved-", "a team's stages run in namespace PREFIX+TEAM")
	f.StringVar(&k.serverURL, "kube-server-url", "", "paved's URL as stage pods reach it, to fetch their workspace and send their artifacts (default: --external-url, else the --addr URL)")
	f.StringVar(&k.fetchImage, "kube-fetch-image", "curlimages/curl:8.11.1", "image of the containers that fetch a stage's workspace and send its artifacts back (needs sh, curl and tar)")
	f.StringVar(&k.defaultImage, "kube-default-image", "debian:stable-slim", "image of the stages that name none (image:)")
	f.StringVar(&k.cacheClaim, "kube-cache-claim", "", "PersistentVolumeClaim in each team namespace for the stages' caches (default: none)")
}

func (k *kubeOptions) executorFor(logger *slog.Logger, dir string, blobs *cache.Blobs, serverURL func() string) (*kubeexec.Executor, error) {
	client, err := deploykube.Client(deploy.Kubernetes{Kubeconfig: k.kubeconfig, Context: k.context})
	if err != nil {
		return nil, fmt.Errorf("--executor kubernetes: %w", err)
	}
	if k.serverURL != "" {
		serverURL = func() string { return k.serverURL }
	}
	return kubeexec.New(kubeexec.Config{
		Client: client, NamespacePrefix: k.namespacePrefix, ServerURL: serverURL, CacheClaim: k.cacheClaim, Logger: logger,
		Dir: dir, Blobs: blobs, FetchImage: k.fetchImage, DefaultImage: k.defaultImage,
	})
}

package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/paved/paved/internal/deploy"
	deploykube "github.com/paved/paved/internal/deploy/kube"
	"github.com/paved/paved/internal/execute"
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
}

func (k *kubeOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&k.kubeconfig, "kube-config", "", "kubeconfig of the executor's cluster (default $KUBECONFIG, else ~/.kube/config)")
	f.StringVar(&k.context, "kube-context", "", "kubeconfig context of the executor's cluster, or in-cluster (default: the current context)")
	f.StringVar(&k.namespacePrefix, "kube-namespace-prefix", "paved-", "a team's stages run in namespace PREFIX+TEAM")
	f.StringVar(&k.serverURL, "kube-server-url", "", "paved's URL as pods reach it, to fetch the workspace (default: the --addr URL)")
	f.StringVar(&k.cacheClaim, "kube-cache-claim", "", "PersistentVolumeClaim in each team namespace for the stages' caches (default: none)")
}

func (k *kubeOptions) executorFor(logger *slog.Logger) (*kubeexec.Executor, error) {
	client, err := deploykube.Client(deploy.Kubernetes{Kubeconfig: k.kubeconfig, Context: k.context})
	if err != nil {
		return nil, fmt.Errorf("--executor kubernetes: %w", err)
	}
	return kubeexec.New(kubeexec.Config{
		Client: client, NamespacePrefix: k.namespacePrefix, ServerURL: k.serverURL, CacheClaim: k.cacheClaim, Logger: logger,
		// TODO(kube): a scoped, short-lived API token per stage once internal/access lands.
		Token: func(context.Context, execute.Job) (string, error) { return "", nil },
	})
}

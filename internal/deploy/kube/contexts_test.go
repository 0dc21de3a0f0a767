package kube_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/paved/paved/internal/deploy"
	"github.com/paved/paved/internal/deploy/kube"
	"github.com/paved/paved/internal/store"
)

// TestEnvironmentsNameTheirContext: one target deploys two environments through two
// contexts of one kubeconfig, each to its own namespace. The contexts stand for two
// clusters: "east" is the admin, "west" a service account that may act in its namespace
// only, and the current context points at no server. So each deployment must have used
// its own context's server and credentials.
func TestEnvironmentsNameTheirContext(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	east, west := e.ns, e.c.Namespace(t)
	token := e.namespaceToken(west)

	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["prod"] = &clientcmdapi.Cluster{Server: e.c.Config.Host, InsecureSkipTLSVerify: true}
	cfg.Clusters["gone"] = &clientcmdapi.Cluster{Server: "https://127.0.0.1:1", InsecureSkipTLSVerify: true}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{Token: e.c.Config.BearerToken}
	cfg.AuthInfos["deployer"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["east"] = &clientcmdapi.Context{Cluster: "prod", AuthInfo: "admin"}
	cfg.Contexts["west"] = &clientcmdapi.Context{Cluster: "prod", AuthInfo: "deployer"}
	cfg.Contexts["default"] = &clientcmdapi.Context{Cluster: "gone", AuthInfo: "admin"}
	cfg.CurrentContext = "default"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	spec := func(env, context, ns string) deploy.Spec {
		s := e.spec(env, deploy.Rolling, 1)
		s.Kubernetes.Kubeconfig, s.Kubernetes.Context, s.Kubernetes.Namespace = path, context, ns
		return s
	}
	for _, s := range []deploy.Spec{spec("shop-east", "east", east), spec("shop-west", "west", west)} {
		if res, rec := e.deploy(s, v1); res.Outcome != store.DeploymentSucceeded {
			t.Fatalf("%s: %+v\n%s", s.Environment, res, rec.text())
		}
		d, err := e.client().AppsV1().Deployments(s.Kubernetes.Namespace).Get(context.Background(), s.Environment, metav1.GetOptions{})
		if err != nil || d.Status.ReadyReplicas != 1 {
			t.Errorf("%s in %s: %v", s.Environment, s.Kubernetes.Namespace, err)
		}
	}

	// west's credentials do not reach east's namespace, and no context means the current
	// one, whose server is gone.
	_, err := e.target.Deploy(context.Background(), kube.Request{ID: "dep-x", Spec: spec("shop-x", "west", east), Artifact: v1}, nil)
	if !apierrors.IsForbidden(err) {
		t.Errorf("west deploying to east's namespace: %v, want forbidden", err)
	}
	_, err = e.target.Deploy(context.Background(), kube.Request{ID: "dep-y", Spec: spec("shop-y", "", east), Artifact: v1}, nil)
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("the current context: %v, want its server refusing", err)
	}
	_, err = e.target.Deploy(context.Background(), kube.Request{ID: "dep-z", Spec: spec("shop-z", "north", east), Artifact: v1}, nil)
	if err == nil || !strings.Contains(err.Error(), `context "north"`) || !strings.Contains(err.Error(), "set kubernetes.context") {
		t.Errorf("an unknown context: %v", err)
	}
}

// namespaceToken is a token of a service account that is admin of ns alone.
func (e *env) namespaceToken(ns string) string {
	e.t.Helper()
	ctx := context.Background()
	c := e.client()
	if _, err := c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "deployer"}}, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "deployer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "admin"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "deployer", Namespace: ns}},
	}
	if _, err := c.RbacV1().RoleBindings(ns).Create(ctx, rb, metav1.CreateOptions{}); err != nil {
		e.t.Fatal(err)
	}
	tr, err := c.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "deployer", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	return tr.Status.Token
}
